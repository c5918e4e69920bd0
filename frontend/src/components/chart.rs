//! The daily chart: jobs per day as bars, median run time as a line, drawn by ECharts.
//!
//! charming builds the ECharts option. It is handed to ECharts as JSON (what charming's HTML
//! renderer emits) rather than through charming's `WasmRenderer`, because that renderer
//! converts `None` to `undefined`: days without a median must be `null` in the option, so
//! `getOption().series[1].data` reads back as plain numbers and nulls.

use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::element::{AxisType, Color, Tooltip, Trigger};
use charming::series::{Bar, Line};
use common::summary::DailyPoint;
use leptos::ev;
use leptos::html::Div;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::format::utc_date;

/// The element id ECharts draws into; the browser tests find the same element by
/// `data-testid="chart"`.
pub const CHART_ID: &str = "chart";

/// Bars of jobs per UTC day on the left axis and the day's median run time in minutes as a
/// line on the right axis, dates along the bottom. Redraws whenever `points` changes and
/// follows the window's width.
#[component]
pub fn DailyChart(
    /// One point per day, oldest first, empty days included.
    #[prop(into)]
    points: Signal<Vec<DailyPoint>>,
) -> impl IntoView {
    let container = NodeRef::<Div>::new();
    let (failure, set_failure) = signal(None::<String>);

    Effect::new(move |_| {
        let points = points.get();
        let Some(element) = container.get() else {
            return;
        };
        set_failure.set(draw(&element, &daily_chart(&points)).err());
    });

    let resize = window_event_listener(ev::resize, move |_| {
        if let Some(chart) = container.get_untracked().and_then(|el| get_instance_by_dom(&el)) {
            chart.resize();
        }
    });
    on_cleanup(move || resize.remove());

    view! {
        <div class="chart" id=CHART_ID data-testid="chart" node_ref=container></div>
        {move || failure.get().map(|message| view! { <p class="chart-failure">{message}</p> })}
    }
}

/// The ECharts option for the daily points. Series 0 is jobs per day, series 1 the median in
/// minutes (`null` for days with no finished job); x-axis labels are `YYYY-MM-DD`.
pub fn daily_chart(points: &[DailyPoint]) -> Chart {
    let days: Vec<String> = points.iter().map(|p| utc_date(p.day_ms)).collect();
    let jobs: Vec<i64> = points.iter().map(|p| i64::try_from(p.jobs).unwrap_or(i64::MAX)).collect();
    let median_minutes: Vec<Option<f64>> =
        points.iter().map(|p| p.median_duration_s.map(|s| s / 60.0)).collect();
    Chart::new()
        .animation(false)
        .color(vec![Color::from("#5b8def"), Color::from("#e8833a")])
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().top(0))
        .grid(Grid::new().left(56).right(64).top(48).bottom(40))
        .x_axis(Axis::new().type_(AxisType::Category).data(days))
        .y_axis(Axis::new().type_(AxisType::Value).name("Jobs").min_interval(1))
        .y_axis(Axis::new().type_(AxisType::Value).name("Median (min)").split_number(5))
        .series(Bar::new().name("Jobs per day").data(jobs))
        .series(
            Line::new()
                .name("Median duration (min)")
                .y_axis_index(1)
                .connect_nulls(false)
                .data(median_minutes),
        )
}

/// Draws `chart` into `element`, reusing the ECharts instance already there.
fn draw(element: &web_sys::Element, chart: &Chart) -> Result<(), String> {
    let json = serde_json::to_string(chart).map_err(|e| e.to_string())?;
    let option = js_sys::JSON::parse(&json).map_err(|_| "the chart option is not valid JSON".to_owned())?;
    // Round what the tooltip shows; the data itself stays exact.
    if let Ok(tooltip) = js_sys::Reflect::get(&option, &"tooltip".into()) {
        let round = js_sys::Function::new_with_args(
            "v",
            "return v == null ? '–' : (Math.round(v * 10) / 10).toLocaleString('en')",
        );
        let _ = js_sys::Reflect::set(&tooltip, &"valueFormatter".into(), &round);
    }
    let instance = match get_instance_by_dom(element) {
        Some(instance) => instance,
        None => init(element).map_err(|_| "The chart library (ECharts) did not load.".to_owned())?,
    };
    instance.set_option(&option, true);
    Ok(())
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
    fn resize(this: &ECharts);
}

fn get_instance_by_dom(element: &web_sys::Element) -> Option<ECharts> {
    get_instance_by_dom_js(element).ok().flatten()
}
