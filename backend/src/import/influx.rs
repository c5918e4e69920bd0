//! InfluxDB line protocol → [`MetricSample`]s.
//!
//! `measurement[,tag=value...] field=value[,...] [timestamp]`, one point per line. Every
//! numeric or boolean field becomes a sample named `measurement.field` carrying the point's
//! tags; string fields are skipped with a reason. A point whose tags include `builder_name`
//! and `build_number` (what Buildbot's statistics service sends) is linked to the job
//! `{source: opts.source or "buildbot", id: "<builder_name>/<build_number>"}`; the store
//! reads that link as "the job of this builder and build number in this source" (see
//! [`crate::store::Store::samples`]), since Buildbot keys its jobs by buildid.
//!
//! Hand-written rather than `influxdb-line-protocol` because that crate is not a dependency;
//! the grammar is small and a byte scanner streams at about 100 MB/s.
//!
//! Memory is bounded: the input is read in chunks of whole lines of about 1 MiB (a line
//! longer than [`MAX_LINE_BYTES`] is an error), parsed on a second thread while the sink
//! stores the previous batch, and samples go to the sink every [`BATCH_POINTS`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;

use common::Timestamp;
use common::job::MAX_NAME_LEN;
use common::records::{JobKey, MetricSample};
use common::time::{MAX_RECORD_MS, MIN_RECORD_MS};

use super::{ImportBatch, ImportError, Options, Skipped};

/// Unit of the line timestamps (the `precision` query parameter of the write endpoints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds, InfluxDB's default.
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

impl Precision {
    /// From the `precision` parameter: `ns`, `n`, `us`, `u`, `µs`, `ms`, `s` (v1 also `m`
    /// and `h`, which are rare enough to refuse rather than get wrong silently).
    pub fn parse(s: &str) -> Result<Precision, String> {
        Ok(match s {
            "" | "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            other => {
                return Err(format!("unknown precision `{other}`, expected ns, us, ms or s"));
            }
        })
    }

    fn to_millis(self, t: i64) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(t.div_euclid(1_000_000)),
            Precision::Microseconds => Some(t.div_euclid(1_000)),
            Precision::Milliseconds => Some(t),
            Precision::Seconds => t.checked_mul(1000),
        }
    }
}

/// Longest accepted line. InfluxDB limits string fields to 64 KiB; a line far beyond that
/// is a runaway input, not data.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Samples per batch handed to the sink, each written in one transaction. (InfluxDB
/// recommends 5,000–10,000 points a write; an import stores faster in bigger transactions.)
pub const BATCH_POINTS: usize = 50_000;

/// Job source used for `builder_name`/`build_number` links when `opts.source` is not set.
pub const DEFAULT_SOURCE: &str = "buildbot";

/// Bytes the parser takes at a time: whole lines, cut at the last line end past this size.
const CHUNK_BYTES: usize = 1 << 20;

/// Parses line protocol from `input`, handing samples to `sink` in batches of about
/// [`BATCH_POINTS`]. Timestamps are in `opts.precision`; points without one get `opts.now_ms`.
///
/// An input longer than one chunk is parsed on a second thread while this one reads the
/// next chunk and hands the previous batches to `sink` (which writes them, in an import):
/// parsing and storing overlap. At most two chunks and their batches are in flight.
pub fn parse(
    input: &mut dyn BufRead,
    opts: &Options,
    sink: &mut dyn FnMut(ImportBatch) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut parser = Parser {
        precision: opts.precision,
        now_ms: opts.now_ms,
        source: opts.source.as_deref().unwrap_or(DEFAULT_SOURCE),
        origin: &opts.origin,
        line_no: 0,
        batch: ImportBatch::default(),
        tags: Vec::new(),
        fields: Vec::new(),
    };
    let mut chunks = Chunks { input, carry: Vec::new(), spare: Vec::new() };
    let first = chunks.next();
    if first.is_final() {
        let Parsed { batches, error, .. } = parser.chunk(first);
        for batch in batches {
            sink(batch)?;
        }
        return error.map_or(Ok(()), Err);
    }
    std::thread::scope(|scope| {
        let (to_parser, parser_in) = std::sync::mpsc::sync_channel::<Chunk>(1);
        let (parser_out, parsed) = std::sync::mpsc::channel::<Parsed>();
        scope.spawn(move || {
            for chunk in parser_in {
                let out = parser.chunk(chunk);
                let stop = out.error.is_some();
                if parser_out.send(out).is_err() || stop {
                    break;
                }
            }
        });
        // The parser only stops early after an error, which is then waiting in `parsed`;
        // a failed send changes nothing.
        let _ = to_parser.send(first);
        let (mut in_flight, mut read_all) = (1, false);
        loop {
            if !read_all {
                let chunk = chunks.next();
                read_all = chunk.is_final();
                if to_parser.send(chunk).is_ok() {
                    in_flight += 1;
                }
            }
            let Ok(Parsed { batches, error, spent }) = parsed.recv() else {
                // The parser thread panicked; the scope re-raises it.
                return Err(ImportError::new(&opts.origin, "line protocol parser failed"));
            };
            in_flight -= 1;
            chunks.spare.push(spent);
            for batch in batches {
                sink(batch)?;
            }
            if let Some(e) = error {
                return Err(e);
            }
            if read_all && in_flight == 0 {
                return Ok(());
            }
        }
    })
}

/// A piece of the input for the parser.
enum Chunk {
    /// Whole lines, each ending in `\n`.
    Lines(Vec<u8>),
    /// The rest of the input; its last line may lack the `\n`.
    Last(Vec<u8>),
    /// Reading stopped: the complete lines read before, then why (a read error, or a line
    /// longer than [`MAX_LINE_BYTES`]).
    Failed(Vec<u8>, String),
}

impl Chunk {
    fn is_final(&self) -> bool {
        !matches!(self, Chunk::Lines(_))
    }
}

/// What the parser made of a chunk: the batches it filled, and the error it stopped at.
/// Batches filled before an error are stored; the partial one is not.
struct Parsed {
    batches: Vec<ImportBatch>,
    error: Option<ImportError>,
    /// The chunk's buffer, emptied, for the reader to fill again.
    spent: Vec<u8>,
}

/// Cuts the input into chunks of whole lines, holding back the partial line at a chunk's
/// end for the next one.
struct Chunks<'a> {
    input: &'a mut dyn BufRead,
    carry: Vec<u8>,
    /// Buffers of parsed chunks, for reuse.
    spare: Vec<Vec<u8>>,
}

impl Chunks<'_> {
    fn next(&mut self) -> Chunk {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.reserve(CHUNK_BYTES);
        // The carried bytes are one partial line, without `\n`.
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let mut last_nl: Option<usize> = None;
        loop {
            let data = match self.input.fill_buf() {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Chunk::Failed(buf, format!("read failed: {e}")),
            };
            if data.is_empty() {
                return Chunk::Last(buf);
            }
            let room = CHUNK_BYTES.saturating_sub(buf.len());
            let take = if room == 0 { data.len() } else { data.len().min(room) };
            if let Some(i) = data[..take].iter().rposition(|&b| b == b'\n') {
                last_nl = Some(buf.len() + i);
            }
            buf.extend_from_slice(&data[..take]);
            self.input.consume(take);
            if buf.len() < CHUNK_BYTES {
                continue;
            }
            match last_nl {
                Some(nl) => {
                    self.carry.extend_from_slice(&buf[nl + 1..]);
                    buf.truncate(nl + 1);
                    return Chunk::Lines(buf);
                }
                // No line end in a buffer this long: it is all one line.
                None if buf.len() > MAX_LINE_BYTES => return Chunk::Failed(Vec::new(), too_long()),
                None => {}
            }
        }
    }
}

/// An empty batch with room for [`BATCH_POINTS`] samples: growing it instead would copy
/// the samples a dozen times over.
fn new_batch() -> ImportBatch {
    ImportBatch { samples: Vec::with_capacity(BATCH_POINTS), ..ImportBatch::default() }
}

fn too_long() -> String {
    format!("line is longer than {MAX_LINE_BYTES} bytes")
}

/// A field value as written.
#[derive(Debug, PartialEq)]
enum Value<'a> {
    Number(f64),
    Str(Cow<'a, str>),
}

struct Parser<'o> {
    precision: Precision,
    now_ms: i64,
    source: &'o str,
    /// Where the input came from, for error locations.
    origin: &'o str,
    /// Lines parsed so far.
    line_no: u64,
    batch: ImportBatch,
    // Reused between lines to avoid an allocation per point.
    tags: Vec<(String, String)>,
    fields: Vec<(String, f64)>,
}

impl Parser<'_> {
    fn chunk(&mut self, chunk: Chunk) -> Parsed {
        let mut batches = Vec::new();
        let (mut bytes, error) = match chunk {
            Chunk::Lines(bytes) => {
                let error = self.lines(&bytes, false, &mut batches).err();
                (bytes, error)
            }
            Chunk::Last(bytes) => {
                let error = self.lines(&bytes, true, &mut batches).err();
                if error.is_none() && self.batch != ImportBatch::default() {
                    batches.push(std::mem::take(&mut self.batch));
                }
                (bytes, error)
            }
            Chunk::Failed(bytes, message) => {
                let error = self.lines(&bytes, false, &mut batches).err();
                let error = error.unwrap_or_else(|| self.at(self.line_no + 1, message));
                (bytes, Some(error))
            }
        };
        bytes.clear();
        Parsed { batches, error, spent: bytes }
    }

    /// Parses the lines of `bytes`, pushing each batch that fills to `batches`. Without
    /// `last`, bytes after the last `\n` are not a line yet and are left alone.
    fn lines(&mut self, bytes: &[u8], last: bool, batches: &mut Vec<ImportBatch>) -> Result<(), ImportError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => (&rest[..nl], &rest[nl + 1..]),
                None if last => (rest, &rest[rest.len()..]),
                None => break,
            };
            self.line_no += 1;
            if line.len() > MAX_LINE_BYTES {
                return Err(self.at(self.line_no, too_long()));
            }
            self.line(line, self.line_no).map_err(|m| self.at(self.line_no, m))?;
            // Skipped string fields count too, so a stream of them stays bounded.
            if self.batch.samples.len() + self.batch.skipped.len() >= BATCH_POINTS {
                batches.push(std::mem::replace(&mut self.batch, new_batch()));
            }
            rest = next;
        }
        Ok(())
    }

    fn at(&self, line_no: u64, message: String) -> ImportError {
        if self.origin.is_empty() {
            ImportError::new(format!("line {line_no}"), message)
        } else {
            ImportError::new(format!("{}: line {line_no}", self.origin), message)
        }
    }

    /// Parses one line (without its `\n`) and appends its samples to the batch.
    fn line(&mut self, raw: &[u8], line_no: u64) -> Result<(), String> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let start = raw.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(raw.len());
        let s = &raw[start..];
        if s.is_empty() || s[0] == b'#' {
            return Ok(());
        }
        let s =
            std::str::from_utf8(s).map_err(|e| format!("not UTF-8 at byte {}", start + e.valid_up_to()))?;
        let mut cur = Cursor { s, i: 0 };

        let measurement = cur.token(b", ", Escapes::Measurement);
        if measurement.is_empty() {
            return Err("missing measurement".into());
        }
        check_len("measurement", &measurement)?;
        self.tags.clear();
        while cur.peek() == Some(b',') {
            cur.i += 1;
            let key = cur.token(b"=, ", Escapes::Key);
            if cur.peek() != Some(b'=') {
                return Err(format!("tag `{key}` has no `=value`"));
            }
            cur.i += 1;
            let value = cur.token(b", =", Escapes::Key);
            if cur.peek() == Some(b'=') {
                return Err(format!("tag `{key}`: unescaped `=` in value"));
            }
            if key.is_empty() {
                return Err("empty tag key".into());
            }
            if value.is_empty() {
                return Err(format!("tag `{key}` has an empty value"));
            }
            check_len("tag key", &key)?;
            check_len("tag value", &value)?;
            self.tags.push((key.into_owned(), value.into_owned()));
        }
        if cur.skip_spaces() == 0 {
            return Err(match cur.peek() {
                None => "missing fields (a point needs at least one field)".into(),
                Some(c) => format!("unexpected `{}` after the tag set", c as char),
            });
        }

        self.fields.clear();
        let mut strings = Vec::new();
        loop {
            let key = cur.token(b"=, ", Escapes::Key);
            if key.is_empty() {
                return Err(if cur.peek().is_none() && self.fields.is_empty() && strings.is_empty() {
                    "missing fields (a point needs at least one field)".into()
                } else {
                    "empty field key".into()
                });
            }
            if cur.peek() != Some(b'=') {
                return Err(format!("field `{key}` has no `=value`"));
            }
            cur.i += 1;
            check_len("field key", &key)?;
            match field_value(&mut cur).map_err(|e| format!("field `{key}`: {e}"))? {
                Value::Number(v) => self.fields.push((key.into_owned(), v)),
                Value::Str(_) => strings.push(key.into_owned()),
            }
            match cur.peek() {
                Some(b',') => cur.i += 1,
                _ => break,
            }
        }

        let time_ms = if cur.skip_spaces() > 0 && cur.peek().is_some() {
            let ts = cur.rest_until_space();
            let t: i64 = ts.parse().map_err(|_| format!("timestamp `{ts}` is not an integer"))?;
            let ms = self.precision.to_millis(t).filter(|ms| (MIN_RECORD_MS..=MAX_RECORD_MS).contains(ms));
            ms.ok_or_else(|| bad_time(ts, t, self.precision))?
        } else {
            self.now_ms
        };
        cur.skip_spaces();
        if let Some(c) = cur.peek() {
            return Err(format!("unexpected `{}` after the timestamp", c as char));
        }

        let job = self.job_link();
        let tags: BTreeMap<String, String> = self.tags.drain(..).collect();
        for key in strings {
            self.batch.skipped.push(Skipped {
                at: format!("line {line_no}"),
                reason: format!(
                    "`{measurement}.{key}` is a string field: only numbers and booleans become samples"
                ),
            });
        }
        let time = Timestamp::from_millis(time_ms);
        let mut fields = self.fields.drain(..).peekable();
        let (mut tags, mut job) = (Some(tags), Some(job));
        while let Some((field, value)) = fields.next() {
            // The last field takes the tag map and job key instead of copying them: copies
            // and their drops are most of the cost of a point.
            let last = fields.peek().is_none();
            self.batch.samples.push(MetricSample {
                name: format!("{measurement}.{field}"),
                value,
                unit: None,
                time,
                tags: take_or_clone(&mut tags, last).unwrap_or_default(),
                job: take_or_clone(&mut job, last).flatten(),
            });
        }
        Ok(())
    }

    fn job_link(&self) -> Option<JobKey> {
        let get = |k: &str| self.tags.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v);
        let (builder, number) = (get("builder_name")?, get("build_number")?);
        Some(JobKey { source: self.source.to_owned(), id: format!("{builder}/{number}") })
    }
}

fn take_or_clone<T: Clone>(o: &mut Option<T>, take: bool) -> Option<T> {
    if take { o.take() } else { o.clone() }
}

fn check_len(what: &str, s: &str) -> Result<(), String> {
    if s.len() > MAX_NAME_LEN {
        return Err(format!("{what} `{}…` is longer than {MAX_NAME_LEN} bytes", truncate(s, 40)));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn bad_time(ts: &str, t: i64, p: Precision) -> String {
    let hint = [
        (Precision::Nanoseconds, "ns"),
        (Precision::Microseconds, "us"),
        (Precision::Milliseconds, "ms"),
        (Precision::Seconds, "s"),
    ]
    .into_iter()
    .find(|(q, _)| *q != p && q.to_millis(t).is_some_and(|ms| (MIN_RECORD_MS..=MAX_RECORD_MS).contains(&ms)))
    .map(|(_, name)| format!(" (it would fit precision={name})"))
    .unwrap_or_default();
    format!("timestamp {ts} at precision {p:?} is outside 1990–2100{hint}")
}

#[derive(Clone, Copy)]
enum Escapes {
    /// Measurement: `\,` and `\ `.
    Measurement,
    /// Tag keys, tag values and field keys: `\,`, `\=` and `\ `.
    Key,
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.i;
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        self.i - start
    }

    fn rest_until_space(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|b| b != b' ') {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// Reads up to the first unescaped byte in `stops`, unescaping per `esc`. A backslash
    /// before any other byte is kept literally, as InfluxDB does.
    fn token(&mut self, stops: &[u8], esc: Escapes) -> Cow<'a, str> {
        let bytes = self.s.as_bytes();
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut seg = start;
        while let Some(&b) = bytes.get(self.i) {
            if b == b'\\' {
                let next = bytes.get(self.i + 1).copied();
                let escapable = match esc {
                    Escapes::Measurement => matches!(next, Some(b',' | b' ')),
                    Escapes::Key => matches!(next, Some(b',' | b'=' | b' ')),
                };
                if escapable {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[seg..self.i]);
                    o.push(next.unwrap() as char);
                    self.i += 2;
                    seg = self.i;
                    continue;
                }
            } else if stops.contains(&b) {
                break;
            }
            self.i += 1;
        }
        match owned {
            None => Cow::Borrowed(&self.s[start..self.i]),
            Some(mut o) => {
                o.push_str(&self.s[seg..self.i]);
                Cow::Owned(o)
            }
        }
    }
}

/// Longest string field InfluxDB accepts.
const MAX_STRING_FIELD: usize = 64 * 1024;

fn field_value<'a>(cur: &mut Cursor<'a>) -> Result<Value<'a>, String> {
    if cur.peek() == Some(b'"') {
        cur.i += 1;
        let bytes = cur.s.as_bytes();
        let start = cur.i;
        let mut out: Option<String> = None;
        let mut seg = start;
        loop {
            match bytes.get(cur.i) {
                None => return Err("unterminated string (missing closing `\"`)".into()),
                Some(b'\\') if matches!(bytes.get(cur.i + 1), Some(b'"' | b'\\')) => {
                    let o = out.get_or_insert_with(String::new);
                    o.push_str(&cur.s[seg..cur.i]);
                    o.push(bytes[cur.i + 1] as char);
                    cur.i += 2;
                    seg = cur.i;
                }
                Some(b'"') => break,
                Some(_) => cur.i += 1,
            }
        }
        let v = match out {
            None => Cow::Borrowed(&cur.s[start..cur.i]),
            Some(mut o) => {
                o.push_str(&cur.s[seg..cur.i]);
                Cow::Owned(o)
            }
        };
        cur.i += 1;
        if v.len() > MAX_STRING_FIELD {
            return Err(format!("string longer than {MAX_STRING_FIELD} bytes"));
        }
        return Ok(Value::Str(v));
    }
    let start = cur.i;
    while cur.peek().is_some_and(|b| b != b',' && b != b' ') {
        cur.i += 1;
    }
    let raw = &cur.s[start..cur.i];
    scalar(raw).map(Value::Number)
}

/// A float, `i`-suffixed integer, `u`-suffixed unsigned integer or boolean, as f64.
fn scalar(raw: &str) -> Result<f64, String> {
    match raw {
        "" => return Err("missing value".into()),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    if let Some(n) = raw.strip_suffix('i') {
        return n.parse::<i64>().map(|v| v as f64).map_err(|_| format!("`{raw}` is not an integer"));
    }
    if let Some(n) = raw.strip_suffix('u') {
        return n.parse::<u64>().map(|v| v as f64).map_err(|_| format!("`{raw}` is not an unsigned integer"));
    }
    // Rust also reads `inf`, `NaN` and `infinity`; line protocol has none of them.
    let numeric = raw.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match raw.parse::<f64>() {
        Ok(v) if numeric && v.is_finite() => Ok(v),
        _ => Err(format!(
            "`{}` is not a number, integer (`1i`), unsigned (`1u`), boolean or quoted string",
            truncate(raw, 60)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn run(input: &str, precision: Precision) -> Result<ImportBatch, ImportError> {
        let opts = Options { now_ms: NOW, precision, ..Default::default() };
        let mut all = ImportBatch::default();
        parse(&mut input.as_bytes(), &opts, &mut |b| {
            all.samples.extend(b.samples);
            all.skipped.extend(b.skipped);
            Ok(())
        })?;
        Ok(all)
    }

    /// Parses `input` and renders each sample as `name value time_ms tags [job]`, one per
    /// line, or `error: ...`.
    fn check(input: &str, expected: &str) {
        check_at(input, Precision::Nanoseconds, expected)
    }

    fn check_at(input: &str, precision: Precision, expected: &str) {
        let got = match run(input, precision) {
            Ok(b) => {
                let mut out: Vec<String> = b
                    .samples
                    .iter()
                    .map(|s| {
                        let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        let job =
                            s.job.as_ref().map(|j| format!(" job={}:{}", j.source, j.id)).unwrap_or_default();
                        format!("{} {} {} [{}]{job}", s.name, s.value, s.time.as_millis(), tags.join(","))
                    })
                    .collect();
                out.extend(b.skipped.iter().map(|s| format!("skipped {}: {}", s.at, s.reason)));
                out.join("\n")
            }
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got.trim(), expected.trim(), "input:\n{input}");
    }

    #[test]
    fn field_types() {
        check(
            "m f=1.5,i=-3i,u=7u,b=t,B=FALSE,e=1e3 1700000000000000000",
            "m.f 1.5 1700000000000 []\nm.i -3 1700000000000 []\nm.u 7 1700000000000 []\n\
             m.b 1 1700000000000 []\nm.B 0 1700000000000 []\nm.e 1000 1700000000000 []",
        );
        check(
            r#"m s="a string",n=2 1700000000000000000"#,
            "m.n 2 1700000000000 []\nskipped line 1: `m.s` is a string field: only numbers and booleans become samples",
        );
    }

    #[test]
    fn escaping() {
        check(
            r#"cpu\ load\,x,host\=a=web\ 1,z=a\,b v\ al=1,s="q\"uo\\te, =x" 1700000000000000000"#,
            "cpu load,x.v al 1 1700000000000 [host=a=web 1,z=a,b]\n\
             skipped line 1: `cpu load,x.s` is a string field: only numbers and booleans become samples",
        );
        // A backslash before anything else is literal.
        check(r"m,path=C:\dir v=1 1700000000000000000", r"m.v 1 1700000000000 [path=C:\dir]");
    }

    #[test]
    fn timestamps_and_precision() {
        check("m v=1", "m.v 1 1700000000000 []");
        check("m v=1 1700000000123456789", "m.v 1 1700000000123 []");
        check_at("m v=1 1700000000", Precision::Seconds, "m.v 1 1700000000000 []");
        check_at("m v=1 1700000000123", Precision::Milliseconds, "m.v 1 1700000000123 []");
        check_at("m v=1 1700000000123456", Precision::Microseconds, "m.v 1 1700000000123 []");
        check(
            "m v=1 1700000000",
            "error: line 1: timestamp 1700000000 at precision Nanoseconds is outside 1990–2100 (it would fit precision=s)",
        );
        check("m v=1 12x", "error: line 1: timestamp `12x` is not an integer");
        check("m v=1 1700000000000000000 extra", "error: line 1: unexpected `e` after the timestamp");
    }

    #[test]
    fn buildbot_statistics_link_to_jobs() {
        check(
            "Builder2-build-times,builder_name=Builder2,build_number=42 duration=123.4\n\
             Builder2-build-times,builder_name=Builder2,build_number=42 start-time=\"2024-03-01T12:00:00\"",
            "Builder2-build-times.duration 123.4 1700000000000 [build_number=42,builder_name=Builder2] job=buildbot:Builder2/42\n\
             skipped line 2: `Builder2-build-times.start-time` is a string field: only numbers and booleans become samples",
        );
        let opts = Options { source: Some("bb-main".into()), now_ms: NOW, ..Default::default() };
        let mut got = None;
        parse(&mut &b"m,builder_name=b,build_number=1 v=1\n"[..], &opts, &mut |b| {
            got = b.samples[0].job.clone();
            Ok(())
        })
        .unwrap();
        assert_eq!(got, Some(JobKey { source: "bb-main".into(), id: "b/1".into() }));
    }

    #[test]
    fn comments_blank_lines_crlf_and_no_final_newline() {
        check(
            "# header\n\n   \r\n  m v=1 1700000000000000000\r\n# x\nm v=2",
            "m.v 1 1700000000000 []\nm.v 2 1700000000000 []",
        );
        check("", "");
    }

    #[test]
    fn bad_lines_are_named() {
        for (input, want) in [
            ("m", "line 1: missing fields (a point needs at least one field)"),
            ("m ", "line 1: missing fields (a point needs at least one field)"),
            ("ok v=1\nm,t v=1", "line 2: tag `t` has no `=value`"),
            ("m,t= v=1", "line 1: tag `t` has an empty value"),
            ("m,=x v=1", "line 1: empty tag key"),
            ("m v", "line 1: field `v` has no `=value`"),
            ("m v=", "line 1: field `v`: missing value"),
            ("m v=1,", "line 1: empty field key"),
            (
                "m v=abc",
                "line 1: field `v`: `abc` is not a number, integer (`1i`), unsigned (`1u`), boolean or quoted string",
            ),
            (
                "m v=inf",
                "line 1: field `v`: `inf` is not a number, integer (`1i`), unsigned (`1u`), boolean or quoted string",
            ),
            ("m v=1.5i", "line 1: field `v`: `1.5i` is not an integer"),
            ("m v=-1u", "line 1: field `v`: `-1u` is not an unsigned integer"),
            ("m v=\"open", "line 1: field `v`: unterminated string (missing closing `\"`)"),
            (",t=1 v=1", "line 1: missing measurement"),
            ("m\n\n\nm v=\u{1}", "line 1: missing fields (a point needs at least one field)"),
        ] {
            check(input, &format!("error: {want}"));
        }
        let mut bad: &[u8] = b"m v=1\nm,t=\xff v=1\n";
        let e = parse(&mut bad, &Options::default(), &mut |_| Ok(())).unwrap_err();
        assert_eq!(e.to_string(), "line 2: not UTF-8 at byte 4");
    }

    #[test]
    fn huge_fields_and_lines_are_refused() {
        let long_tag = format!("m,t={} v=1", "x".repeat(MAX_NAME_LEN + 1));
        let e = run(&long_tag, Precision::Nanoseconds).unwrap_err().to_string();
        assert!(e.starts_with("line 1: tag value `xxx"), "{e}");
        let long_str = format!("m s=\"{}\"", "x".repeat(MAX_STRING_FIELD + 1));
        let e = run(&long_str, Precision::Nanoseconds).unwrap_err().to_string();
        assert_eq!(e, "line 1: field `s`: string longer than 65536 bytes");
        // A newline-free stream is cut off at the line limit, not buffered whole.
        let endless = "m v=1".to_string() + &"0".repeat(MAX_LINE_BYTES + 10);
        let mut r = std::io::BufReader::with_capacity(4096, endless.as_bytes());
        let e = parse(&mut r, &Options::default(), &mut |_| Ok(())).unwrap_err();
        assert_eq!(e.to_string(), format!("line 1: line is longer than {MAX_LINE_BYTES} bytes"));
    }

    #[test]
    fn lines_split_across_reads_and_batches() {
        let mut text = String::new();
        for i in 0..(BATCH_POINTS * 2 + 5) {
            text.push_str(&format!(
                "load,host=h{} v={i}i {}\n",
                i % 7,
                1_700_000_000_000_000_000i64 + i as i64 * 1_000_000
            ));
        }
        let mut r = std::io::BufReader::with_capacity(37, text.as_bytes());
        let mut sizes = Vec::new();
        let mut last = None;
        parse(&mut r, &Options::default(), &mut |b| {
            sizes.push(b.samples.len());
            last = b.samples.last().cloned();
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, vec![BATCH_POINTS, BATCH_POINTS, 5]);
        let last = last.unwrap();
        assert_eq!(last.value, (BATCH_POINTS * 2 + 4) as f64);
        assert_eq!(last.time.as_millis(), 1_700_000_000_000 + (BATCH_POINTS * 2 + 4) as i64);
    }

    #[test]
    fn string_only_streams_are_batched_too() {
        let text = "m s=\"x\"\n".repeat(BATCH_POINTS + 1);
        let mut sizes = Vec::new();
        parse(&mut text.as_bytes(), &Options::default(), &mut |b| {
            sizes.push(b.skipped.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(sizes, [BATCH_POINTS, 1]);
    }

    #[test]
    fn fixture_imports() {
        let text = include_str!("../../tests/fixtures/influx/buildbot-stats.lp");
        let b = run(text, Precision::Nanoseconds).unwrap();
        assert!(b.samples.len() >= 8, "{}", b.samples.len());
        assert!(b.samples.iter().any(|s| s.job.is_some()));
        assert!(b.samples.iter().all(|s| s.value.is_finite()));
    }

    #[test]
    fn random_bytes_never_panic() {
        let seeds = ["m,t=a v=1i,s=\"x\\\"y\" 1700000000000000000\n", "# c\nm\\ x,a\\=b=c\\,d f=t 1\n"];
        let mut rng = noise::Lcg(0x5eed);
        for round in 0..3000 {
            let mut bytes: Vec<u8> = seeds[round % 2].as_bytes().to_vec();
            noise::mutate(&mut rng, &mut bytes, b",= \"\\\nit0.-#\xff");
            let _ = parse(&mut &bytes[..], &Options::default(), &mut |_| Ok(()));
        }
    }
}

/// Deterministic input mutation for the importers' no-panic tests (no proptest here).
#[cfg(test)]
pub(crate) mod noise {
    /// A tiny deterministic PRNG for the no-panic tests.
    pub(crate) struct Lcg(pub u64);

    impl Lcg {
        pub fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Truncates, flips, inserts and deletes bytes, favouring `alphabet`.
    pub(crate) fn mutate(rng: &mut Lcg, bytes: &mut Vec<u8>, alphabet: &[u8]) {
        for _ in 0..1 + rng.below(6) {
            match rng.below(5) {
                0 => {
                    let n = rng.below(bytes.len() + 1);
                    bytes.truncate(n);
                }
                1 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                2 => {
                    let i = rng.below(bytes.len() + 1);
                    bytes.insert(i, alphabet[rng.below(alphabet.len())]);
                }
                3 if !bytes.is_empty() => {
                    let i = rng.below(bytes.len());
                    bytes.remove(i);
                }
                _ => {
                    let i = rng.below(bytes.len() + 1);
                    let j = i + rng.below(bytes.len() - i + 1);
                    let copy = bytes[i..j].to_vec();
                    bytes.splice(i..i, copy);
                }
            }
        }
    }
}
