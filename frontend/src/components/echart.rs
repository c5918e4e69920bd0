//! An ECharts host: draws a charming option, reports clicks on data items and legend
//! toggles, and says when the drawing has reached the screen.
//!
//! The option goes to ECharts as JSON (what charming's HTML renderer emits) rather than
//! through charming's `WasmRenderer`, because that renderer turns `None` into `undefined`:
//! gaps must be `null` so `getOption()` reads back plain numbers and nulls.

use std::rc::Rc;
use std::sync::Arc;

use charming::Chart;
use leptos::ev;
use leptos::html::Div;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

/// The JS functions handed to ECharts, kept alive as long as the component.
type Handlers = StoredValue<Vec<Closure<dyn Fn(JsValue)>>, LocalStorage>;

/// A click on data item `index` of series `series`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ItemClick {
    pub series: usize,
    pub index: usize,
}

/// Draws `chart` whenever it changes, into a `data-testid="chart"` element. `on_click` gets
/// clicks on data items, `on_legend` a series name and whether it is now shown, and
/// `on_painted` runs once the frame with the new drawing has been painted.
#[component]
pub fn EChart(
    #[prop(into)] chart: Signal<Option<Arc<Chart>>>,
    on_click: Rc<dyn Fn(ItemClick)>,
    on_legend: Rc<dyn Fn(String, bool)>,
    on_painted: Rc<dyn Fn()>,
    /// Pixel height of the drawing area.
    #[prop(default = 420)]
    height: u32,
    /// A height that follows the chart (long category lists); overrides `height`.
    #[prop(into, optional)]
    fit_height: Option<Signal<u32>>,
) -> impl IntoView {
    let container = NodeRef::<Div>::new();
    let (failure, set_failure) = signal(None::<String>);
    // Handlers live as long as the component; ECharts keeps calling the same functions.
    let handlers: Handlers = StoredValue::new_local(Vec::new());

    Effect::new(move |_| {
        let Some(chart) = chart.get() else { return };
        let height = fit_height.map_or(height, |h| h.get());
        let Some(element) = container.get() else { return };
        let style = format!("height:{height}px");
        let resized = element.get_attribute("style").as_deref() != Some(style.as_str());
        let _ = element.set_attribute("style", &style);
        let instance = match get_instance_by_dom(&element) {
            Some(instance) => instance,
            None => match init(&element) {
                Ok(instance) => {
                    bind(&instance, handlers, on_click.clone(), on_legend.clone());
                    instance
                }
                Err(_) => {
                    set_failure.set(Some("The chart library (ECharts) did not load.".into()));
                    return;
                }
            },
        };
        match option_of(&chart) {
            Ok(option) => {
                let started = crate::pages::explorer::now_ms();
                if resized {
                    instance.resize();
                }
                instance.set_option(&option, true);
                // How long ECharts took to lay out and draw, for the page's timing line.
                let _ = element.set_attribute(
                    "data-draw-ms",
                    &format!("{:.1}", crate::pages::explorer::now_ms() - started),
                );
                set_failure.set(None);
            }
            Err(e) => set_failure.set(Some(e)),
        }
        let on_painted = on_painted.clone();
        after_paint(move || on_painted());
    });

    let resize = window_event_listener(ev::resize, move |_| {
        if let Some(chart) = container.get_untracked().and_then(|el| get_instance_by_dom(&el)) {
            chart.resize();
        }
    });
    on_cleanup(move || {
        resize.remove();
        if let Some(el) = container.get_untracked()
            && let Some(chart) = get_instance_by_dom(&el)
        {
            chart.dispose();
        }
    });

    view! {
        <div class="chart" id="chart" data-testid="chart" node_ref=container style=format!("height:{height}px")></div>
        {move || failure.get().map(|message| view! { <p class="chart-failure">{message}</p> })}
    }
}

fn bind(
    instance: &ECharts,
    handlers: Handlers,
    on_click: Rc<dyn Fn(ItemClick)>,
    on_legend: Rc<dyn Fn(String, bool)>,
) {
    let number = |v: &JsValue, key: &str| js_sys::Reflect::get(v, &key.into()).ok().and_then(|x| x.as_f64());
    let click = Closure::<dyn Fn(JsValue)>::new(move |params: JsValue| {
        if let (Some(series), Some(index)) = (number(&params, "seriesIndex"), number(&params, "dataIndex")) {
            on_click(ItemClick { series: series as usize, index: index as usize });
        }
    });
    let legend = Closure::<dyn Fn(JsValue)>::new(move |params: JsValue| {
        let name = js_sys::Reflect::get(&params, &"name".into()).ok().and_then(|n| n.as_string());
        let selected = js_sys::Reflect::get(&params, &"selected".into()).ok();
        if let (Some(name), Some(selected)) = (name, selected) {
            let shown = js_sys::Reflect::get(&selected, &name.clone().into()).ok().and_then(|b| b.as_bool());
            on_legend(name, shown.unwrap_or(true));
        }
    });
    instance.on("click", click.as_ref().unchecked_ref());
    instance.on("legendselectchanged", legend.as_ref().unchecked_ref());
    handlers.update_value(|h| h.extend([click, legend]));
}

/// The chart as a JS object, with a tooltip that rounds what it shows.
fn option_of(chart: &Chart) -> Result<JsValue, String> {
    let json = serde_json::to_string(chart).map_err(|e| e.to_string())?;
    let option = js_sys::JSON::parse(&json).map_err(|_| "the chart option is not valid JSON".to_owned())?;
    if let Ok(tooltip) = js_sys::Reflect::get(&option, &"tooltip".into())
        && tooltip.is_object()
    {
        let round = js_sys::Function::new_with_args(
            "v",
            "return v == null ? '–' : (Math.round(v * 1000) / 1000).toLocaleString('en')",
        );
        let _ = js_sys::Reflect::set(&tooltip, &"valueFormatter".into(), &round);
    }
    Ok(option)
}

/// Runs `f` after the next frame has been painted: a task queued from a frame callback runs
/// once that frame is on screen (ECharts draws in its own frame callback, queued earlier).
pub fn after_paint(f: impl FnOnce() + 'static) {
    let Some(window) = web_sys::window() else { return f() };
    let task = Closure::once_into_js(f);
    let frame = Closure::once_into_js(move || {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback(task.unchecked_ref());
        }
    });
    let _ = window.request_animation_frame(frame.unchecked_ref());
}

#[wasm_bindgen]
extern "C" {
    /// An ECharts chart instance.
    type ECharts;

    #[wasm_bindgen(catch, js_namespace = echarts, js_name = init)]
    fn init(element: &web_sys::Element) -> Result<ECharts, JsValue>;

    // `catch` too: without ECharts loaded this must not abort the app.
    #[wasm_bindgen(catch, js_namespace = echarts, js_name = getInstanceByDom)]
    fn get_instance_by_dom_js(element: &web_sys::Element) -> Result<Option<ECharts>, JsValue>;

    #[wasm_bindgen(method, js_name = setOption)]
    fn set_option(this: &ECharts, option: &JsValue, not_merge: bool);

    #[wasm_bindgen(method)]
    fn on(this: &ECharts, event: &str, handler: &js_sys::Function);

    #[wasm_bindgen(method)]
    fn resize(this: &ECharts);

    #[wasm_bindgen(method)]
    fn dispose(this: &ECharts);
}

fn get_instance_by_dom(element: &web_sys::Element) -> Option<ECharts> {
    get_instance_by_dom_js(element).ok().flatten()
}
