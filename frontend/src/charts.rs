//! ECharts options (built with charming) for the chart views, and what each drawn point
//! stands for, so a click can drill down.

use std::collections::HashMap;

use charming::Chart;
use charming::component::{Axis, DataZoom, Grid, Legend, VisualMap};
use charming::datatype::DataPoint;
use charming::element::{AxisType, Color, Orient, Tooltip, Trigger};
use charming::series::{Bar, Heatmap, Line};
use common::engine::{Answer, Key, Part, TimeBucket};
use common::view::histogram::Histogram;
use common::view::{ViewKind, ViewMeasure, ViewState};

use crate::format::{bucket_label, short_number};

/// What a click on a drawn item means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Group `g` of the answer.
    Group(usize),
    /// Bin `i` of the histogram.
    Bin(usize),
}

/// A chart and, per series and data index, the target of a click.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSpec {
    pub chart: Chart,
    pub targets: Vec<Vec<Option<Target>>>,
    /// Pixel height the chart needs (long category lists get taller charts).
    pub height: u32,
}

impl ChartSpec {
    pub fn target(&self, series: usize, index: usize) -> Option<Target> {
        self.targets.get(series).and_then(|s| s.get(index)).copied().flatten()
    }
}

const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#bab0ac", "#86bcb6", "#d37295",
];

fn base(view: &ViewState) -> Chart {
    let hidden: Vec<(String, bool)> = view.hidden.iter().map(|h| (h.clone(), false)).collect();
    Chart::new()
        .animation(false)
        .color(PALETTE.iter().map(|c| Color::from(*c)).collect::<Vec<_>>())
        .legend(Legend::new().type_(charming::component::LegendType::Scroll).top(0).selected(hidden))
}

/// The usual plot area: room for axis labels, legend on top.
fn grid() -> Grid {
    Grid::new().left(16).right(32).top(48).bottom(48).contain_label(true)
}

/// Key parts that name a series (every dimension part), joined with ` · `.
fn series_name(answer: &Answer, g: usize, dims: &[usize]) -> String {
    if dims.is_empty() {
        return String::new();
    }
    dims.iter().map(|&p| answer.label(p, g).into_owned()).collect::<Vec<_>>().join(" · ")
}

/// Measure values that mean "nothing happened" when a group is absent.
fn zero_when_absent(measure: &ViewMeasure) -> bool {
    matches!(measure, ViewMeasure::Count | ViewMeasure::Failures | ViewMeasure::CpuHours)
}

/// Lines or stacked bars over time: one series per combination of dimension values, every
/// bucket of the range on the x-axis.
pub fn time_series(view: &ViewState, answer: &Answer, range: (i64, i64)) -> ChartSpec {
    let bucket_part = answer.parts.iter().position(|p| matches!(p, Part::Bucket(_)));
    let Some(bp) = bucket_part else { return bars(view, answer) };
    let Part::Bucket(bucket) = answer.parts[bp] else { unreachable!() };
    let dims: Vec<usize> = (0..answer.parts.len()).filter(|&p| p != bp).collect();
    let buckets = bucket_starts(bucket, range.0, range.1, answer, bp);
    let at: HashMap<i64, usize> = buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let mut names: Vec<String> = Vec::new();
    let mut series: Vec<Vec<Option<usize>>> = Vec::new();
    for g in 0..answer.len() {
        let name = series_name(answer, g, &dims);
        let s = match names.iter().position(|n| *n == name) {
            Some(s) => s,
            None => {
                names.push(name);
                series.push(vec![None; buckets.len()]);
                names.len() - 1
            }
        };
        if let Key::Bucket(ms) = answer.keys[bp][g]
            && let Some(&i) = at.get(&ms)
        {
            series[s][i] = Some(g);
        }
    }
    let scale = view.measure.scale();
    let zero = zero_when_absent(&view.measure);
    let labels: Vec<String> = buckets.iter().map(|&b| bucket_label(bucket, b)).collect();
    let mut chart = base(view)
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .grid(grid())
        .x_axis(Axis::new().type_(AxisType::Category).data(labels))
        .y_axis(Axis::new().type_(AxisType::Value).name(view.measure.to_string()));
    if buckets.len() > 120 {
        chart = chart.data_zoom(DataZoom::new().type_(charming::component::DataZoomType::Slider).bottom(8));
    }
    for (name, groups) in names.iter().zip(&series) {
        let name = if name.is_empty() { view.measure.to_string() } else { name.clone() };
        let data: Vec<Option<f64>> = groups
            .iter()
            .map(|g| match g {
                Some(g) => answer.values[0][*g].map(|v| v * scale),
                None if zero => Some(0.0),
                None => None,
            })
            .collect();
        chart = if view.view == ViewKind::StackedBar {
            chart.series(Bar::new().name(name).stack("all").data(data))
        } else {
            chart.series(
                Line::new().name(name).show_symbol(buckets.len() <= 60).connect_nulls(false).data(data),
            )
        };
    }
    let targets = series.into_iter().map(|s| s.into_iter().map(|g| g.map(Target::Group)).collect()).collect();
    ChartSpec { chart, targets, height: 420 }
}

/// Every bucket start from the range's first to its last, so empty buckets show as gaps
/// (or zeros); buckets of the answer outside that list are added.
fn bucket_starts(bucket: TimeBucket, from_ms: i64, to_ms: i64, answer: &Answer, part: usize) -> Vec<i64> {
    let mut starts: Vec<i64> = answer.keys[part]
        .iter()
        .filter_map(|k| if let Key::Bucket(ms) = k { Some(*ms) } else { None })
        .collect();
    let step = match bucket {
        TimeBucket::Hour => Some(3_600_000),
        TimeBucket::Day => Some(86_400_000),
        TimeBucket::Week => Some(7 * 86_400_000),
        TimeBucket::Month => None,
    };
    if let (Some(step), Some(&first)) = (step, starts.iter().min()) {
        // Align to the answer's own buckets (weeks start on Monday, days at midnight UTC).
        let mut t = first - ((first - from_ms).max(0) / step) * step;
        let mut n = 0;
        while t <= to_ms && n < 5000 {
            starts.push(t);
            t += step;
            n += 1;
        }
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// One bar per value of the first dimension (stacked by the second), in answer order.
pub fn bars(view: &ViewState, answer: &Answer) -> ChartSpec {
    let scale = view.measure.scale();
    let mut categories: Vec<String> = Vec::new();
    let mut stacks: Vec<String> = Vec::new();
    let mut cells: HashMap<(usize, usize), usize> = HashMap::new();
    for g in 0..answer.len() {
        let c = if answer.parts.is_empty() { "All jobs".to_owned() } else { answer.label(0, g).into_owned() };
        let s = if answer.parts.len() > 1 { answer.label(1, g).into_owned() } else { String::new() };
        let ci = categories.iter().position(|x| *x == c).unwrap_or_else(|| {
            categories.push(c);
            categories.len() - 1
        });
        let si = stacks.iter().position(|x| *x == s).unwrap_or_else(|| {
            stacks.push(s);
            stacks.len() - 1
        });
        cells.insert((si, ci), g);
    }
    let horizontal = categories.len() > 12 || categories.iter().any(|c| c.len() > 14);
    let value_axis = Axis::new().type_(AxisType::Value);
    let category_axis = Axis::new().type_(AxisType::Category).data(categories.clone());
    let mut chart = base(view).tooltip(Tooltip::new().trigger(Trigger::Axis)).grid(grid());
    chart = if horizontal {
        chart.x_axis(value_axis).y_axis(category_axis.inverse(true))
    } else {
        chart.x_axis(category_axis).y_axis(value_axis.name(view.measure.to_string()))
    };
    let height = if horizontal { (categories.len() as u32 * 22 + 110).max(300) } else { 420 };
    let mut targets = Vec::new();
    for (si, name) in stacks.iter().enumerate() {
        let groups: Vec<Option<usize>> =
            (0..categories.len()).map(|ci| cells.get(&(si, ci)).copied()).collect();
        let data: Vec<Option<f64>> =
            groups.iter().map(|g| g.and_then(|g| answer.values[0][g]).map(|v| v * scale)).collect();
        let name = if name.is_empty() { view.measure.to_string() } else { name.clone() };
        chart = chart.series(Bar::new().name(name).stack("all").data(data));
        targets.push(groups.into_iter().map(|g| g.map(Target::Group)).collect());
    }
    ChartSpec { chart, targets, height }
}

/// Rows = first dimension, columns = second dimension or time bucket, colour = measure.
pub fn heatmap(view: &ViewState, answer: &Answer) -> ChartSpec {
    if answer.parts.len() < 2 {
        return bars(view, answer);
    }
    let scale = view.measure.scale();
    let axis_labels = |part: usize| -> (Vec<String>, HashMap<Key, usize>) {
        let mut keys: Vec<(Key, usize)> = Vec::new();
        for g in 0..answer.len() {
            let k = answer.keys[part][g];
            if !keys.iter().any(|(x, _)| *x == k) {
                keys.push((k, g));
            }
        }
        keys.sort_by_key(|(k, _)| *k);
        let labels = keys
            .iter()
            .map(|&(k, g)| match (&answer.parts[part], k) {
                (Part::Bucket(b), Key::Bucket(ms)) => bucket_label(*b, ms),
                _ => answer.label(part, g).into_owned(),
            })
            .collect();
        (labels, keys.iter().enumerate().map(|(i, (k, _))| (*k, i)).collect())
    };
    let (rows, row_at) = axis_labels(0);
    let row_count = rows.len();
    let (cols, col_at) = axis_labels(1);
    let mut data = Vec::new();
    let mut targets = Vec::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for g in 0..answer.len() {
        let Some(v) = answer.values[0][g].map(|v| v * scale) else { continue };
        lo = lo.min(v);
        hi = hi.max(v);
        let (x, y) = (col_at[&answer.keys[1][g]], row_at[&answer.keys[0][g]]);
        data.push(vec![DataPoint::from(x as f64), DataPoint::from(y as f64), DataPoint::from(v)]);
        targets.push(Some(Target::Group(g)));
    }
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    let chart = base(view)
        .legend(Legend::new().show(false))
        .tooltip(Tooltip::new().position("top"))
        .grid(Grid::new().left(16).right(32).top(16).bottom(72).contain_label(true))
        .x_axis(Axis::new().type_(AxisType::Category).data(cols))
        .y_axis(Axis::new().type_(AxisType::Category).data(rows).inverse(true))
        .visual_map(
            VisualMap::new()
                .min(lo)
                .max(hi)
                .calculable(true)
                .orient(Orient::Horizontal)
                .left("center")
                .bottom(0)
                .color(vec![Color::from("#b40426"), Color::from("#f4a582"), Color::from("#f7f7f7")]),
        )
        .series(Heatmap::new().name(view.measure.to_string()).data(data));
    let height = (row_count as u32 * 22 + 130).clamp(300, 1000);
    ChartSpec { chart, targets: vec![targets], height }
}

/// Bars of jobs per bin of the measure's value.
pub fn histogram(view: &ViewState, h: &Histogram, value_name: &str) -> ChartSpec {
    let labels: Vec<String> = (0..h.counts.len())
        .map(|i| format!("{}–{}", short_number(h.edges[i]), short_number(h.edges[i + 1])))
        .collect();
    let counts: Vec<f64> = h.counts.iter().map(|&c| c as f64).collect();
    let chart = base(view)
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .grid(grid().bottom(56))
        .x_axis(
            Axis::new()
                .type_(AxisType::Category)
                .name(value_name.to_owned())
                .name_location(charming::element::NameLocation::Middle)
                .name_gap(32)
                .data(labels),
        )
        .y_axis(Axis::new().type_(AxisType::Value).name("jobs"))
        .series(Bar::new().name("jobs").bar_gap("2%").data(counts));
    ChartSpec {
        chart,
        targets: vec![(0..h.counts.len()).map(|i| Some(Target::Bin(i))).collect()],
        height: 420,
    }
}
