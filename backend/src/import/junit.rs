//! JUnit XML test reports → [`TestResult`]s of one job.
//!
//! There is no official schema, so this reads the dialects seen in the wild: a `<testsuites>`
//! or bare `<testsuite>` root, nested suites, namespaced tags, missing `time`/`timestamp`,
//! pytest, Maven Surefire (with its `flakyFailure`/`rerunFailure` elements), jest-junit,
//! go-junit-report and googletest (`status="notrun"`). `<properties>`, `<system-out>` and
//! `<system-err>` are skipped over.
//!
//! A case's suite is its `classname` when it has one (pytest, Surefire, go), else the
//! innermost `<testsuite name>`. Its outcome is `error` > `failure` > `skipped` > passed. A
//! Surefire case that passed after failed reruns keeps `passed` with a `flaky: ...` message,
//! so intermittent tests stay visible.
//!
//! Safety: the reader streams (no DOM); a DOCTYPE that declares entities is refused, and
//! references to undeclared entities are kept as literal text, so entity expansion ("billion
//! laughs") cannot happen. No single tag or text run may exceed [`MAX_EVENT_BYTES`].

use std::io::{BufRead, Read};

use common::job::MAX_NAME_LEN;
use common::records::{JobKey, TestOutcome, TestResult};
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::{ImportBatch, ImportError, Options, Skipped};

/// Longest single XML event (one tag, or one run of text such as a `<system-out>`).
pub const MAX_EVENT_BYTES: usize = 64 << 20;

/// Longest failure message kept; the rest of a stack trace is cut.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 256;

/// Test results per batch handed to the sink.
pub const BATCH_TESTS: usize = 10_000;

/// Parses one JUnit XML report. Every result belongs to `opts.job`, which is required.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    parse_limited(input, opts, sink, MAX_EVENT_BYTES)
}

fn parse_limited(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
    max_event_bytes: usize,
) -> Result<(), ImportError> {
    let origin = if opts.origin.is_empty() { "junit".to_owned() } else { opts.origin.clone() };
    let job = opts.job.clone().ok_or_else(|| {
        ImportError::new(&origin, "a JUnit report needs the job it belongs to (source and id)")
    })?;
    let mut reader = Reader::from_reader(Counting { inner: input, line: 1, event_bytes: 0, max_event_bytes });
    let mut state = State {
        job,
        batch: ImportBatch::default(),
        open: Vec::new(),
        suites: Vec::new(),
        case: None,
        seen_root: false,
        cases_seen: 0,
    };
    let mut buf = Vec::new();
    let at = |line: u64| {
        if opts.origin.is_empty() { format!("line {line}") } else { format!("{}: line {line}", opts.origin) }
    };
    loop {
        buf.clear();
        reader.get_mut().event_bytes = 0;
        let event = match reader.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(e) => {
                let line = reader.get_ref().line;
                return Err(ImportError::new(at(line), format!("broken XML: {e}")));
            }
        };
        let line = reader.get_ref().line;
        let decoder = reader.decoder();
        let done = state.event(event, decoder, line).map_err(|m| ImportError::new(at(line), m))?;
        if done {
            break;
        }
        if state.batch.tests.len() >= BATCH_TESTS {
            sink(std::mem::take(&mut state.batch))?;
        }
    }
    if state.batch != ImportBatch::default() {
        sink(state.batch)?;
    }
    Ok(())
}

struct State {
    job: JobKey,
    batch: ImportBatch,
    /// What each open element is, with its name for messages.
    open: Vec<(Elem, String)>,
    /// Names of the open `<testsuite>`s, outermost first.
    suites: Vec<String>,
    case: Option<Case>,
    seen_root: bool,
    cases_seen: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Elem {
    Suites,
    Suite,
    Case,
    /// `<failure>`, `<error>`, `<skipped>` or a Surefire rerun element: its text is the
    /// message body.
    Outcome,
    Other,
}

#[derive(Default)]
struct Case {
    name: String,
    classname: String,
    duration_ms: Option<i64>,
    failure: Option<String>,
    error: Option<String>,
    skipped: Option<String>,
    /// Surefire `flakyFailure`/`flakyError`: failed attempts before a pass.
    flaky: Vec<String>,
    /// Surefire `rerunFailure`/`rerunError`: reruns that failed too.
    reruns: usize,
    /// googletest `status="notrun"` / `result="skipped"`.
    not_run: bool,
    /// The outcome element being read, whose body text is collected.
    current: Option<Slot>,
    body: String,
}

/// Which of a case's outcome records an element's message goes to.
#[derive(Clone, Copy)]
enum Slot {
    Failure,
    Error,
    Skipped,
    Flaky,
    Rerun,
}

impl State {
    /// Handles one event; `Ok(true)` at the end of the document.
    fn event(
        &mut self,
        event: Event<'_>,
        decoder: quick_xml::encoding::Decoder,
        line: u64,
    ) -> Result<bool, String> {
        match event {
            Event::Start(e) => {
                let elem = self.open_elem(&e, decoder)?;
                if self.open.len() >= MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                self.open.push((elem, String::from_utf8_lossy(e.name().as_ref()).into_owned()));
            }
            Event::Empty(e) => {
                let elem = self.open_elem(&e, decoder)?;
                self.close_elem(elem, line);
            }
            Event::End(_) => {
                // quick-xml has checked that the name matches the open tag.
                if let Some((elem, _)) = self.open.pop() {
                    self.close_elem(elem, line);
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| format!("broken XML: {e}"))?;
                self.body(&text);
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| format!("broken XML: {e}"))?;
                self.body(&text);
            }
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    self.body(c.encode_utf8(&mut [0; 4]));
                } else {
                    let name = r.decode().map_err(|e| format!("broken XML: {e}"))?;
                    match resolve_predefined_entity(&name) {
                        Some(s) => self.body(s),
                        // Undeclared entity: kept literally, never expanded.
                        None => self.body(&format!("&{name};")),
                    }
                }
            }
            Event::DocType(d) => {
                if d.windows(8).any(|w| w.eq_ignore_ascii_case(b"<!ENTITY")) {
                    return Err("DOCTYPE declares entities; refused to avoid entity expansion".into());
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if let Some((_, name)) = self.open.last() {
                    return Err(format!("truncated: <{name}> is still open at the end of the input"));
                }
                if !self.seen_root {
                    return Err("no <testsuites> or <testsuite> element: not a JUnit report".into());
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn open_elem(
        &mut self,
        e: &BytesStart<'_>,
        decoder: quick_xml::encoding::Decoder,
    ) -> Result<Elem, String> {
        let local = e.local_name();
        let name = local.as_ref();
        if self.open.is_empty() {
            if self.seen_root {
                return Err("a second root element after the report".into());
            }
            self.seen_root = true;
            if name != b"testsuites" && name != b"testsuite" {
                return Err(format!(
                    "root element <{}> is not <testsuites> or <testsuite>: not a JUnit report",
                    String::from_utf8_lossy(name)
                ));
            }
        }
        let in_case = self.innermost() == Some(Elem::Case);
        Ok(match name {
            b"testsuites" if self.open.is_empty() => Elem::Suites,
            b"testsuite" if self.case.is_none() => {
                self.suites.push(attr(e, b"name", decoder)?.unwrap_or_default());
                Elem::Suite
            }
            b"testcase" if self.case.is_none() => {
                let mut case = Case {
                    name: attr(e, b"name", decoder)?.unwrap_or_default(),
                    classname: attr(e, b"classname", decoder)?.unwrap_or_default(),
                    duration_ms: attr(e, b"time", decoder)?.and_then(|t| seconds_to_ms(&t)),
                    ..Case::default()
                };
                let status = attr(e, b"status", decoder)?.unwrap_or_default();
                let result = attr(e, b"result", decoder)?.unwrap_or_default();
                case.not_run = matches!(status.as_str(), "notrun" | "skipped" | "disabled")
                    || matches!(result.as_str(), "skipped" | "suppressed");
                self.case = Some(case);
                Elem::Case
            }
            b"failure" | b"error" | b"skipped" | b"flakyFailure" | b"flakyError" | b"rerunFailure"
            | b"rerunError"
                if in_case =>
            {
                let message = attr(e, b"message", decoder)?.unwrap_or_default();
                let kind = attr(e, b"type", decoder)?.unwrap_or_default();
                let text = match (message.trim(), kind.trim()) {
                    ("", k) => k.to_owned(),
                    (m, "") => m.to_owned(),
                    (m, k) if m.contains(k) => m.to_owned(),
                    (m, k) => format!("{k}: {m}"),
                };
                let case = self.case.as_mut().expect("in a case");
                case.body.clear();
                let slot = match name {
                    b"failure" => Slot::Failure,
                    b"error" => Slot::Error,
                    b"skipped" => Slot::Skipped,
                    b"flakyFailure" | b"flakyError" => Slot::Flaky,
                    _ => Slot::Rerun,
                };
                case.current = Some(slot);
                match slot {
                    // A second <failure> in one case keeps the first message.
                    Slot::Failure => _ = case.failure.get_or_insert(text),
                    Slot::Error => _ = case.error.get_or_insert(text),
                    Slot::Skipped => _ = case.skipped.get_or_insert(text),
                    Slot::Flaky => case.flaky.push(text),
                    Slot::Rerun => case.reruns += 1,
                }
                Elem::Outcome
            }
            _ => Elem::Other,
        })
    }

    fn close_elem(&mut self, elem: Elem, line: u64) {
        match elem {
            Elem::Suite => {
                self.suites.pop();
            }
            Elem::Case => {
                if let Some(case) = self.case.take() {
                    self.finish_case(case, line);
                }
            }
            Elem::Outcome => {
                // The body is the message when the element had no `message` attribute.
                if let Some(case) = self.case.as_mut() {
                    let body = std::mem::take(&mut case.body);
                    let body = body.trim();
                    let slot = match case.current.take() {
                        Some(Slot::Failure) => case.failure.as_mut(),
                        Some(Slot::Error) => case.error.as_mut(),
                        Some(Slot::Skipped) => case.skipped.as_mut(),
                        Some(Slot::Flaky) => case.flaky.last_mut(),
                        Some(Slot::Rerun) | None => None,
                    };
                    if let Some(m) = slot.filter(|m| m.is_empty()) {
                        m.push_str(body);
                    }
                }
            }
            Elem::Suites | Elem::Other => {}
        }
    }

    fn innermost(&self) -> Option<Elem> {
        self.open.last().map(|(e, _)| *e)
    }

    /// Text inside an outcome element, capped at [`MAX_MESSAGE_BYTES`].
    fn body(&mut self, text: &str) {
        if self.innermost() != Some(Elem::Outcome) {
            return;
        }
        if let Some(case) = self.case.as_mut() {
            let room = MAX_MESSAGE_BYTES.saturating_sub(case.body.len());
            case.body.push_str(cut(text, room));
        }
    }

    fn finish_case(&mut self, case: Case, line: u64) {
        self.cases_seen += 1;
        let suite = if case.classname.trim().is_empty() {
            self.suites.iter().rev().find(|s| !s.is_empty()).cloned().unwrap_or_default()
        } else {
            case.classname.trim().to_owned()
        };
        let name = case.name.trim().to_owned();
        let skip =
            |reason: String| Skipped { at: format!("line {line}: testcase #{}", self.cases_seen), reason };
        if name.is_empty() {
            self.batch.skipped.push(skip("testcase without a name".into()));
            return;
        }
        if name.len() > MAX_NAME_LEN || suite.len() > MAX_NAME_LEN {
            self.batch.skipped.push(skip(format!("name or classname longer than {MAX_NAME_LEN} bytes")));
            return;
        }
        let (outcome, message) = if let Some(m) = case.error {
            (TestOutcome::Error, Some(with_reruns(m, case.reruns)))
        } else if let Some(m) = case.failure {
            (TestOutcome::Failed, Some(with_reruns(m, case.reruns)))
        } else if let Some(m) = case.skipped {
            (TestOutcome::Skipped, Some(m))
        } else if case.not_run {
            (TestOutcome::Skipped, None)
        } else if let Some(first) = case.flaky.first() {
            let n = case.flaky.len();
            (
                TestOutcome::Passed,
                Some(format!(
                    "flaky: passed after {n} failed attempt{}: {first}",
                    if n == 1 { "" } else { "s" }
                )),
            )
        } else {
            (TestOutcome::Passed, None)
        };
        let message = message.map(|m| cut(m.trim(), MAX_MESSAGE_BYTES).to_owned()).filter(|m| !m.is_empty());
        self.batch.tests.push(TestResult {
            job: self.job.clone(),
            suite,
            name,
            outcome,
            duration_ms: case.duration_ms,
            message,
        });
    }
}

fn with_reruns(message: String, reruns: usize) -> String {
    match reruns {
        0 => message,
        n => format!("{message} (and {n} rerun{} failed)", if n == 1 { "" } else { "s" }),
    }
}

/// An attribute's unescaped value. Undeclared entities are left as written.
fn attr(
    e: &BytesStart<'_>,
    key: &[u8],
    decoder: quick_xml::encoding::Decoder,
) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("broken attribute: {err}"))?;
        if a.key.local_name().as_ref() == key {
            let v = match a.decode_and_unescape_value(decoder) {
                Ok(v) => v.into_owned(),
                Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
            };
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// `time="1.25"` → 1250 ms. Tolerates thousands separators (`1,234.5`, Surefire in some
/// locales) and a trailing `s`; anything negative, non-finite or over a year is dropped.
fn seconds_to_ms(raw: &str) -> Option<i64> {
    let cleaned: String = raw.trim().trim_end_matches('s').chars().filter(|&c| c != ',').collect();
    let secs: f64 = cleaned.parse().ok()?;
    (secs.is_finite() && (0.0..=366.0 * 86400.0).contains(&secs)).then(|| (secs * 1000.0).round() as i64)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Counts lines as quick-xml consumes input, and caps the bytes of any one event: quick-xml
/// copies an event into its buffer one refill at a time, so the cap is checked on refill.
struct Counting<'a> {
    inner: &'a mut dyn BufRead,
    line: u64,
    event_bytes: usize,
    max_event_bytes: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Counting<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.event_bytes > self.max_event_bytes {
            return Err(std::io::Error::other(format!(
                "a tag or text run is longer than {} bytes",
                self.max_event_bytes
            )));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are still at the front of the inner buffer.
        if let Ok(buf) = self.inner.fill_buf() {
            self.line += buf[..amt.min(buf.len())].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.event_bytes += amt;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options { job: Some(JobKey { source: "bb".into(), id: "7".into() }), ..Default::default() }
    }

    fn run(xml: &[u8]) -> Result<ImportBatch, ImportError> {
        let mut all = ImportBatch::default();
        parse(&mut &xml[..], &opts(), &mut |b| {
            all.tests.extend(b.tests);
            all.skipped.extend(b.skipped);
            Ok(())
        })?;
        Ok(all)
    }

    /// Parses `xml` and renders one `suite | name | outcome | ms | message` line per result
    /// (skipped records as `skipped: at: reason`), or `error: ...`.
    fn check(xml: &str, expected: &str) {
        let got = match run(xml.as_bytes()) {
            Ok(b) => {
                let mut lines: Vec<String> = b
                    .tests
                    .iter()
                    .map(|t| {
                        assert_eq!(t.job, opts().job.unwrap());
                        let ms = t.duration_ms.map(|d| d.to_string()).unwrap_or("-".into());
                        let msg = t.message.as_deref().unwrap_or("-");
                        format!("{} | {} | {:?} | {ms} | {msg}", t.suite, t.name, t.outcome).trim().to_owned()
                    })
                    .collect();
                lines.extend(b.skipped.iter().map(|s| format!("skipped: {}: {}", s.at, s.reason)));
                lines.join("\n")
            }
            Err(e) => format!("error: {e}"),
        };
        // One result per line of `expected`, indentation ignored; `\n` inside a message is
        // written as the escape `\\n` in the expected text.
        let expected: Vec<String> = expected.trim().lines().map(|l| l.trim().replace("\\n", "\n")).collect();
        assert_eq!(got, expected.join("\n"), "input:\n{xml}");
    }

    #[test]
    fn pytest() {
        check(
            include_str!("../../tests/fixtures/junit/pytest.xml"),
            "tests.test_api.TestLogin | test_login_ok | Passed | 12 | -
             tests.test_api.TestLogin | test_login_bad_password | Failed | 231 | AssertionError: assert 401 == 200\\n +  where 401 = <Response [401]>.status_code
             tests.test_api | test_parse[a-1] | Passed | 1 | -
             tests.test_api | test_needs_network | Skipped | 0 | pytest.skip: needs network
             tests.test_db | test_migrate | Error | 4 | failed on setup with \"fixture 'db' not found\"",
        );
    }

    #[test]
    fn surefire_with_flaky_and_rerun() {
        check(
            include_str!("../../tests/fixtures/junit/surefire.xml"),
            "com.example.cart.CartTest | addsItem | Passed | 11 | -
             com.example.cart.CartTest | appliesDiscount | Passed | 1201250 | -
             com.example.cart.CartTest | checkoutIsFlaky | Passed | 507 | flaky: passed after 1 failed attempt: org.opentest4j.AssertionFailedError: expected: <1> but was: <2>
             com.example.cart.CartTest | removesItem | Failed | 20 | java.lang.IllegalStateException: boom (and 1 rerun failed)
             com.example.cart.CartTest | legacyTotals | Skipped | 0 | @Disabled: rewrite for new tax rules",
        );
    }

    #[test]
    fn jest_message_in_body() {
        check(
            include_str!("../../tests/fixtures/junit/jest.xml"),
            "Cart component renders empty | Cart component renders empty | Passed | 50 | -
             Cart component shows totals | Cart component shows totals | Failed | 131 | Error: expect(received).toBe(expected) // Object.is equality\\n\\nExpected: \"€90.00\"\\nReceived: \"€100.00\"\\n    at Object.<anonymous> (/app/src/Cart.test.tsx:22:31)
             Cart component later | Cart component later | Skipped | 0 | -
             format money | format money | Passed | 2 | -",
        );
    }

    #[test]
    fn go_junit_report() {
        check(
            include_str!("../../tests/fixtures/junit/go-junit-report.xml"),
            "github.com/acme/svc/store | TestPut | Passed | 10 | -
             github.com/acme/svc/store | TestGet | Passed | 0 | -
             github.com/acme/svc/store | TestGet/missing_key | Failed | 0 | Failed
             github.com/acme/svc/store | TestSlow | Skipped | 0 | Skipped",
        );
    }

    #[test]
    fn nested_suites_and_googletest() {
        check(
            include_str!("../../tests/fixtures/junit/nested-gtest.xml"),
            "Boot | cold boot | Passed | 1500 | -
             Boot | warm boot | Passed | - | -
             Firmware | checksum | Passed | 250 | -
             MathTest | Add | Passed | 1 | -
             MathTest | DISABLED_Div | Skipped | 0 | -",
        );
    }

    #[test]
    fn small_dialect_details() {
        // Bare <testsuite> root, namespaced tags, messages from body text, odd times.
        check(
            r#"<j:testsuite xmlns:j="urn:x" name="s"><j:testcase name="a" time="-1"/><j:testcase name="b" time="abc"><j:error type="Timeout"/></j:testcase><testcase name="c" time="2.5s"><failure>  first line &amp; more  </failure><failure message="second"/></testcase></j:testsuite>"#,
            "s | a | Passed | - | -
             s | b | Error | - | Timeout
             s | c | Failed | 2500 | first line & more",
        );
        check(
            r#"<testsuites><testsuite name="s"><testcase classname="" name=""/><testcase name="ok"/></testsuite></testsuites>"#,
            "s | ok | Passed | - | -
             skipped: line 1: testcase #1: testcase without a name",
        );
        // Unknown entity references are kept as written, never expanded.
        check(
            r#"<testsuite><testcase name="x"><failure>&lol9; &#x41;</failure></testcase></testsuite>"#,
            "| x | Failed | - | &lol9; A",
        );
    }

    #[test]
    fn bad_input_is_named() {
        for (xml, want) in [
            ("", "error: line 1: no <testsuites> or <testsuite> element: not a JUnit report"),
            (
                "<html><body/></html>",
                "error: line 1: root element <html> is not <testsuites> or <testsuite>: not a JUnit report",
            ),
            (
                "<testsuite>\n<testcase name=\"a\">\n",
                "error: line 3: truncated: <testcase> is still open at the end of the input",
            ),
            (
                "<testsuite>\n<testcase name=\"a\"></testsuite>",
                "error: line 2: broken XML: ill-formed document: expected `</testcase>`, but `</testsuite>` was found",
            ),
            (
                "<testsuite><testcase name=\"a\" name=\"b\"/></testsuite>",
                "error: line 1: broken attribute: position 18: duplicated attribute, previous declaration at position 9",
            ),
            ("<testsuite/><testsuite/>", "error: line 1: a second root element after the report"),
        ] {
            check(xml, want);
        }
        let e = parse(&mut &b"<testsuite/>"[..], &Options::default(), &mut |_| Ok(())).unwrap_err();
        assert_eq!(e.to_string(), "junit: a JUnit report needs the job it belongs to (source and id)");
        let deep = "<testsuite>".to_owned() + &"<x>".repeat(MAX_DEPTH + 1);
        check(&deep, &format!("error: line 1: elements nested deeper than {MAX_DEPTH}"));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut xml = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
            xml.push_str(&format!(" <!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10)));
        }
        xml.push_str("]>\n<testsuite name=\"&lol9;\"><testcase name=\"&lol9;\"><failure>&lol9;</failure></testcase></testsuite>");
        check(&xml, "error: line 13: DOCTYPE declares entities; refused to avoid entity expansion");
        // A DOCTYPE without entities is harmless and ignored.
        check("<!DOCTYPE testsuite><testsuite><testcase name=\"a\"/></testsuite>", "| a | Passed | - | -");
    }

    #[test]
    fn huge_fields_are_bounded() {
        let trace = "at x.y(Z.java:1)\n".repeat(10_000);
        let xml = format!(
            "<testsuite><testcase name=\"a\"><failure>{trace}</failure><system-out>{trace}</system-out></testcase></testsuite>"
        );
        let b = run(xml.as_bytes()).unwrap();
        assert!(b.tests[0].message.as_ref().unwrap().len() <= MAX_MESSAGE_BYTES);
        let out = format!(
            "<testsuite><testcase name=\"a\"><system-out>{trace}</system-out></testcase></testsuite>"
        );
        // The cap applies as an event spans buffer refills, which is when memory grows.
        let mut r = std::io::BufReader::with_capacity(256, out.as_bytes());
        let e = parse_limited(&mut r, &opts(), &mut |_| Ok(()), 1000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 73: broken XML: I/O error: a tag or text run is longer than 1000 bytes"
        );
        let name = "n".repeat(MAX_NAME_LEN + 1);
        check(
            &format!("<testsuite><testcase name=\"{name}\"/></testsuite>"),
            &format!("skipped: line 1: testcase #1: name or classname longer than {MAX_NAME_LEN} bytes"),
        );
    }

    #[test]
    fn batches_of_many_cases() {
        let mut xml = String::from("<testsuites><testsuite name=\"big\">");
        for i in 0..(BATCH_TESTS + 1) {
            xml.push_str(&format!("<testcase name=\"t{i}\" time=\"0.001\"/>"));
        }
        xml.push_str("</testsuite></testsuites>");
        let mut sizes = Vec::new();
        parse(&mut xml.as_bytes(), &opts(), &mut |b| {
            sizes.push(b.tests.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, [BATCH_TESTS, 1]);
    }

    #[test]
    fn random_bytes_and_truncation_never_panic() {
        use super::super::influx::noise::{Lcg, mutate};
        let seeds: [&[u8]; 3] = [
            include_bytes!("../../tests/fixtures/junit/surefire.xml"),
            include_bytes!("../../tests/fixtures/junit/pytest.xml"),
            include_bytes!("../../tests/fixtures/junit/nested-gtest.xml"),
        ];
        let mut rng = Lcg(11);
        for round in 0..1500 {
            let seed = seeds[round % seeds.len()];
            let mut bytes = seed[..rng.below(seed.len() + 1)].to_vec();
            if round % 2 == 0 {
                bytes = seed.to_vec();
                mutate(&mut rng, &mut bytes, b"<>/=\"'&;![]-\n");
            }
            let _ = run(&bytes);
        }
    }
}
