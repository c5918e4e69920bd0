//! Streaming JSON for the importers that read CI systems' REST responses (Buildbot, Jenkins,
//! GitHub, GitLab), saved to a file or fetched page by page.
//!
//! A [`Stream`] walks the document's outer arrays and objects itself and cuts each record
//! out of the input as raw bytes ([`Stream::raw`]); [`decode`] turns those bytes into the
//! importer's typed struct, borrowing strings from them where the struct asks to. So no
//! `serde_json::Value` tree of the whole input is ever built, and memory stays bounded by
//! one record (plus what the importer keeps) however many records the input holds.
//! Slices rather than `serde_json::from_reader`: serde_json reads a reader a byte at a time,
//! several times slower than a slice (see `import::buildapi`, which does the same).
//!
//! Errors say where: a syntax error gives the origin and the line and column in the whole
//! input; a type error gives the path (`input.json: allBuilds[3].timestamp`). The path is
//! only tracked when a record has failed: decoding runs again with `serde_path_to_error`.

use std::fmt;
use std::io::BufRead;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::ImportError;

/// Cuts JSON values out of a byte stream. It tracks only strings, escapes and bracket
/// depth, which is all it takes to find where a value ends; [`decode`] checks the rest.
pub(crate) struct Stream<'o, R> {
    r: R,
    origin: &'o str,
    buf: Vec<u8>,
    /// Bytes consumed so far, the line the next byte is on (from 1) and the offset that
    /// line starts at: the position in error messages.
    pos: u64,
    line: u64,
    line_start: u64,
}

/// One value cut out of a [`Stream`], with where in the input it started.
pub(crate) struct Raw<'b> {
    pub bytes: &'b [u8],
    line: u64,
    column: u64,
    /// Cut out whole by the stream (so never truncated), rather than a whole input.
    cut: bool,
}

impl<'o, R: BufRead> Stream<'o, R> {
    /// `origin` (a file name or URL) starts every error location.
    pub fn new(r: R, origin: &'o str) -> Self {
        Stream { r, origin, buf: Vec::new(), pos: 0, line: 1, line_start: 0 }
    }

    pub fn origin(&self) -> &'o str {
        self.origin
    }

    /// Skips whitespace; returns the next byte without consuming it (`None` at the end).
    pub fn peek(&mut self) -> Result<Option<u8>, ImportError> {
        loop {
            let buf = self.r.fill_buf().map_err(|e| read_failed(self.origin, &e))?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut n = 0;
            for &b in buf {
                if !b.is_ascii_whitespace() {
                    break;
                }
                n += 1;
                if b == b'\n' {
                    self.line += 1;
                    self.line_start = self.pos + n as u64;
                }
            }
            let next = buf.get(n).copied();
            self.r.consume(n);
            self.pos += n as u64;
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// Walks an array, calling `each` with the stream and the index of every element;
    /// `each` must consume exactly one value ([`Stream::raw`], [`Stream::skip`], or
    /// [`Stream::array`] / [`Stream::object`] for a nested one).
    pub fn array(
        &mut self,
        mut each: impl FnMut(&mut Self, usize) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        self.expect(b'[', "`[`")?;
        let mut index = 0;
        loop {
            match self.peek()? {
                Some(b']') => return self.bump(),
                Some(b',') if index > 0 => {
                    self.bump()?;
                    self.peek()?;
                }
                None => return Err(self.eof("a list")),
                _ if index == 0 => {}
                _ => return Err(self.error("expected `,` or `]`")),
            }
            each(self, index)?;
            index += 1;
        }
    }

    /// Walks an object, calling `each` with the stream and every member's name; `each` must
    /// consume the member's value as for [`Stream::array`].
    pub fn object(
        &mut self,
        mut each: impl FnMut(&mut Self, &str) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        self.expect(b'{', "`{`")?;
        let mut first = true;
        loop {
            match self.peek()? {
                Some(b'}') => return self.bump(),
                Some(b',') if !first => {
                    self.bump()?;
                    self.peek()?;
                }
                None => return Err(self.eof("an object")),
                _ if first => {}
                _ => return Err(self.error("expected `,` or `}`")),
            }
            first = false;
            if self.peek()? != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let origin = self.origin;
            let raw = self.raw()?;
            let key: String = decode(&raw, origin, &"")?;
            self.expect(b':', "`:`")?;
            if self.peek()?.is_none() {
                return Err(self.eof("an object"));
            }
            each(self, &key)?;
        }
    }

    /// [`Stream::array`] for a member that must be a list: anything else fails as serde
    /// would say it (`at: invalid type: map, expected a sequence`).
    pub fn list(
        &mut self,
        at: &str,
        each: impl FnMut(&mut Self, usize) -> Result<(), ImportError>,
    ) -> Result<(), ImportError> {
        if self.peek()? == Some(b'[') {
            return self.array(each);
        }
        let origin = self.origin;
        let raw = self.raw()?;
        decode::<Vec<IgnoredAny>>(&raw, origin, &at).map(drop)
    }

    /// Whether the next value is `null` (consumed if so): an absent optional list.
    pub fn null(&mut self) -> Result<bool, ImportError> {
        if self.peek()? != Some(b'n') {
            return Ok(false);
        }
        self.skip()?;
        Ok(true)
    }

    /// Cuts out the next value. Its bytes live until the stream is used again.
    pub fn raw(&mut self) -> Result<Raw<'_>, ImportError> {
        self.peek()?;
        let (line, column) = (self.line, self.pos - self.line_start + 1);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let cut = self.take_value(&mut buf);
        self.buf = buf;
        cut?;
        Ok(Raw { bytes: &self.buf, line, column, cut: true })
    }

    /// Consumes the next value, checking that it is well-formed JSON.
    pub fn skip(&mut self) -> Result<(), ImportError> {
        let origin = self.origin;
        let raw = self.raw()?;
        decode::<IgnoredAny>(&raw, origin, &"").map(drop)
    }

    /// Checks that nothing but whitespace follows.
    pub fn end(&mut self) -> Result<(), ImportError> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// An error at the current position, located at the origin.
    pub fn error(&self, message: &str) -> ImportError {
        ImportError::new(
            self.origin,
            format!("{message} at line {} column {}", self.line, self.pos - self.line_start + 1),
        )
    }

    fn eof(&self, what: &str) -> ImportError {
        self.error(&format!("EOF while parsing {what} (the input is truncated)"))
    }

    fn expect(&mut self, byte: u8, shown: &str) -> Result<(), ImportError> {
        match self.peek()? {
            Some(b) if b == byte => self.bump(),
            None => Err(self.eof("a value")),
            Some(_) => Err(self.error(&format!("expected {shown}"))),
        }
    }

    /// Consumes the byte [`Stream::peek`] returned (never a newline).
    fn bump(&mut self) -> Result<(), ImportError> {
        self.r.consume(1);
        self.pos += 1;
        Ok(())
    }

    /// Appends the value starting at the next byte (which is not whitespace) to `out`.
    fn take_value(&mut self, out: &mut Vec<u8>) -> Result<(), ImportError> {
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escaped = false;
        let mut scalar = false;
        loop {
            let buf = self.r.fill_buf().map_err(|e| read_failed(self.origin, &e))?;
            if buf.is_empty() {
                if scalar {
                    return Ok(());
                }
                return Err(self.eof("a value"));
            }
            let mut end = None;
            for (i, &c) in buf.iter().enumerate() {
                if scalar {
                    // A number or literal at the top: it ends where a delimiter starts.
                    if matches!(c, b',' | b']' | b'}' | b':') || c.is_ascii_whitespace() {
                        end = Some(i);
                        break;
                    }
                    continue;
                }
                if c == b'\n' {
                    self.line += 1;
                    self.line_start = self.pos + i as u64 + 1;
                }
                if in_str {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' {
                        escaped = true;
                    } else if c == b'"' {
                        in_str = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                } else {
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' if depth == 0 => {
                            return Err(self.error(&format!("unexpected `{}`", c as char)));
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(i + 1);
                                break;
                            }
                        }
                        _ if depth == 0 => scalar = true,
                        _ => {}
                    }
                }
            }
            let n = end.unwrap_or(buf.len());
            out.extend_from_slice(&buf[..n]);
            self.r.consume(n);
            self.pos += n as u64;
            if end.is_some() {
                return Ok(());
            }
        }
    }
}

fn read_failed(origin: &str, e: &std::io::Error) -> ImportError {
    ImportError::new(origin, format!("read failed: {e}"))
}

/// Deserializes one cut-out value. `at` is the value's path in the input (`builds[3]`, or
/// empty for the whole document) and prefixes the path of a type error; it is only
/// formatted for an error.
pub(crate) fn decode<'b, T: Deserialize<'b>>(
    raw: &Raw<'b>,
    origin: &str,
    at: &dyn fmt::Display,
) -> Result<T, ImportError> {
    match serde_json::from_slice(raw.bytes) {
        Ok(value) => Ok(value),
        Err(e) if e.is_data() => {
            let at = at.to_string();
            let at = at.as_str();
            // Parse again, now tracking the path, to say where in the record.
            let de = &mut serde_json::Deserializer::from_slice(raw.bytes);
            match serde_path_to_error::deserialize::<_, T>(de) {
                Err(e) => Err(ImportError::new(
                    locate(origin, &join_path(at, &e.path().to_string())),
                    without_position(e.inner()),
                )),
                Ok(_) => Err(ImportError::new(locate(origin, at), without_position(&e))),
            }
        }
        Err(e) if e.is_eof() && raw.cut => {
            // The stream cut a whole value, so serde_json running out means a scalar at the
            // top was malformed (`tru`) and ended at its delimiter.
            let shown = String::from_utf8_lossy(&raw.bytes[..raw.bytes.len().min(40)]).into_owned();
            Err(ImportError::new(
                origin,
                format!("`{shown}` is not a JSON value at line {} column {}", raw.line, raw.column),
            ))
        }
        Err(e) => {
            // A syntax error: say where in the whole input.
            let (line, column) = if e.line() <= 1 {
                (raw.line, raw.column + e.column().max(1) as u64 - 1)
            } else {
                (raw.line + e.line() as u64 - 1, e.column() as u64)
            };
            Err(ImportError::new(origin, format!("{} at line {line} column {column}", without_position(&e))))
        }
    }
}

/// Deserializes a whole small document (a push body, a single record), naming the path of
/// a type error.
pub(crate) fn decode_slice<'b, T: Deserialize<'b>>(bytes: &'b [u8], origin: &str) -> Result<T, ImportError> {
    decode(&Raw { bytes, line: 1, column: 1, cut: false }, origin, &"")
}

/// `origin` or `origin: path`.
pub(crate) fn locate(origin: &str, path: &str) -> String {
    if path.is_empty() { origin.to_owned() } else { format!("{origin}: {path}") }
}

/// `builds[3]` + `starttime` → `builds[3].starttime`; serde_path_to_error writes `.` for an
/// empty path.
pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match path {
        "." | "" => prefix.to_owned(),
        p if prefix.is_empty() => p.to_owned(),
        p if p.starts_with('[') => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    }
}

/// serde_json's message without "at line 1 column 37", which would point into the record
/// rather than the input; the path or the caller's position says where.
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}

/// An object rebuilt from members the stream did not walk into (`{"name": ..., ...}`), to
/// deserialize once the whole object has been seen; [`Stream::object`] hands out members
/// one at a time, and some documents only say what they are in a later member.
#[derive(Default)]
pub(crate) struct Members {
    bytes: Vec<u8>,
    names: Vec<String>,
}

impl Members {
    pub fn push(&mut self, name: &str, raw: &Raw<'_>) {
        self.bytes.push(if self.bytes.is_empty() { b'{' } else { b',' });
        // A name that came out of `decode::<String>` always serializes.
        self.bytes.extend(serde_json::to_vec(name).unwrap_or_default());
        self.bytes.push(b':');
        self.bytes.extend_from_slice(raw.bytes);
        self.names.push(name.to_owned());
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The object, as a value to [`decode`] (positions in it are not the input's).
    pub fn raw(&mut self) -> Raw<'_> {
        if self.bytes.is_empty() {
            self.bytes.push(b'{');
        }
        self.bytes.push(b'}');
        Raw { bytes: &self.bytes, line: 1, column: 1, cut: true }
    }
}

/// A JSON scalar as tag text (`"a"` → `a`, `3` → `3`, `true` → `true`); lists, objects and
/// null carry no dimension and give `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ScalarText(pub Option<String>);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(ScalarText)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // As serde_json prints numbers (`1.0`, `2.5e-7`).
        Ok(serde_json::Number::from_f64(v).map(|n| n.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A value of the expected shape, or nothing when it has another: for fields that several
/// producers fill differently (Jenkins plugins' `actions[]`), where a surprise should cost
/// the field, not the record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Fits(T),
            Other(IgnoredAny),
        }
        Ok(Lenient(match Either::<T>::deserialize(d)? {
            Either::Fits(value) => Some(value),
            Either::Other(_) => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `input` as an array of objects and lists what it saw.
    fn walk(input: &str) -> Result<Vec<String>, ImportError> {
        let mut seen = Vec::new();
        let mut s = Stream::new(input.as_bytes(), "in");
        s.array(|s, i| {
            s.object(|s, key| {
                let origin = s.origin();
                let raw = s.raw()?;
                let value: serde_json::Value = decode(&raw, origin, &format_args!("[{i}].{key}"))?;
                seen.push(format!("[{i}].{key}={value}"));
                Ok(())
            })
        })?;
        s.end()?;
        Ok(seen)
    }

    #[test]
    fn walks_arrays_and_objects() {
        let got =
            walk(" [ {\"a\": 1, \"b\": \"x\\\"]}\"}, {}, {\"c\": [1, {\"d\": null}], \"e\":-2.5e3}\n]\n")
                .unwrap();
        assert_eq!(got, ["[0].a=1", "[0].b=\"x\\\"]}\"", "[2].c=[1,{\"d\":null}]", "[2].e=-2500.0"]);
        assert_eq!(walk("[]").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("[{\"a\": 1}", "in: EOF while parsing a list (the input is truncated) at line 1 column 10"),
            ("[{\"a\": 1} {}]", "in: expected `,` or `]` at line 1 column 11"),
            ("[{\"a\": 1,}]", "in: expected a member name at line 1 column 10"),
            ("[\n{\"a\":\n tru}]", "in: `tru` is not a JSON value at line 3 column 2"),
            ("[\n{\"a\":\n [tru]}]", "in: expected ident at line 3 column 6"),
            ("[{\"a\": [1,}]", "in: expected value at line 1 column 11"),
            ("[{\"a\": \"x", "in: EOF while parsing a value (the input is truncated) at line 1 column 10"),
            ("[] x", "in: trailing characters at line 1 column 4"),
            ("{}", "in: expected `[` at line 1 column 1"),
        ];
        for (input, want) in cases {
            assert_eq!(walk(input).unwrap_err().to_string(), want, "{input}");
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: i64,
        }
        let mut s = Stream::new(&b"[{\"n\": 1}, {\"n\": \"2\"}]"[..], "in");
        let e = s
            .array(|s, i| {
                let raw = s.raw()?;
                decode::<T>(&raw, "in", &format_args!("[{i}]")).map(drop)
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "in: [1].n: invalid type: string \"2\", expected i64");
    }

    #[test]
    fn scalars_and_lenient_fields() {
        let texts: Vec<ScalarText> =
            serde_json::from_str(r#"["a", 3, -4, 1.0, true, null, [1], {"x": 1}]"#).unwrap();
        let texts: Vec<Option<&str>> = texts.iter().map(|t| t.0.as_deref()).collect();
        assert_eq!(texts, [Some("a"), Some("3"), Some("-4"), Some("1.0"), Some("true"), None, None, None]);
        let l: Vec<Lenient<Vec<i64>>> = serde_json::from_str(r#"[[1, 2], "x", {"a": 1}]"#).unwrap();
        assert_eq!(l, [Lenient(Some(vec![1, 2])), Lenient(None), Lenient(None)]);
    }

    #[test]
    fn members_rebuild_an_object() {
        let mut members = Members::default();
        let mut s = Stream::new(&br#"{"a": [1, 2], "b\"": {"c": true}}"#[..], "in");
        s.object(|s, key| {
            let raw = s.raw()?;
            members.push(key, &raw);
            Ok(())
        })
        .unwrap();
        assert!(members.has("b\"") && !members.has("c"));
        let raw = members.raw();
        let value: serde_json::Value = decode(&raw, "in", &"").unwrap();
        assert_eq!(value, serde_json::json!({"a": [1, 2], "b\"": {"c": true}}));
    }
}
