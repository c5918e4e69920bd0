//! The byte-level primitives of the wire format: varints, fixed-width integer columns,
//! zigzag deltas, and the checks decoding runs on untrusted bytes.

use super::WireError;
use crate::table::Offsets;

#[derive(Default)]
pub(super) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn ivarint(&mut self, v: i64) {
        self.uvarint(zigzag(v));
    }

    pub fn str(&mut self, s: &str) {
        self.uvarint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// An integer column: the width byte, then each value in that many bytes.
    pub fn uints(&mut self, values: Vec<u64>) {
        let w = width(&values);
        self.buf.push(w as u8);
        self.buf.reserve(values.len() * w);
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes()[..w]);
        }
    }
}

/// Signed to unsigned with small magnitudes staying small.
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unzigzag(u: u64) -> i64 {
    (u >> 1) as i64 ^ -((u & 1) as i64)
}

/// Zigzag differences from the previous value (the first from 0).
pub(super) fn deltas(values: impl Iterator<Item = i64>) -> Vec<u64> {
    let mut prev = 0i64;
    values
        .map(|v| {
            let d = v.wrapping_sub(prev);
            prev = v;
            zigzag(d)
        })
        .collect()
}

/// Bytes per value of an integer column: the narrowest of 1, 2, 4, 8 that holds the max.
pub(super) fn width(values: &[u64]) -> usize {
    match values.iter().copied().max().unwrap_or(0) {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

/// Whether every byte is below `card`. The check runs on every one-byte code column (ten
/// of them, a million bytes each), and WASM has no vector max by default, so it tests
/// eight bytes at a time: with n = card − 1 ≤ 127, adding 127 − n to each byte sets its
/// high bit exactly when it exceeds n, and a byte over 127 has that bit already (Bit
/// Twiddling Hacks, "hasmore").
pub(super) fn bytes_below(bytes: &[u8], card: usize) -> bool {
    if card == 0 || card > 128 {
        return bytes.iter().all(|&b| usize::from(b) < card);
    }
    const ONES: u64 = u64::MAX / 255;
    let add = ONES * (127 - (card as u64 - 1));
    let mut words = bytes.chunks_exact(8);
    let mut flagged = 0u64;
    for w in &mut words {
        let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        flagged |= x.wrapping_add(add) | x;
    }
    flagged & (ONES * 128) == 0 && words.remainder().iter().all(|&b| usize::from(b) < card)
}

/// Offsets from an integer column: `f(state, value)` per value, with `state` starting at 0
/// (for prefix sums). u32 unless a value does not fit, as [`Offsets::push`] would make it.
pub(super) fn offsets(column: &Uints, f: impl Fn(&mut i64, u64) -> u64) -> Offsets {
    let (mut state, mut wide) = (0i64, false);
    let narrow = column.map(|v| {
        let o = f(&mut state, v);
        wide |= o > u64::from(u32::MAX);
        o as u32
    });
    if !wide {
        return Offsets::U32(narrow);
    }
    let mut state = 0i64;
    Offsets::U64(column.map(|v| f(&mut state, v)))
}

/// A fixed-width integer column whose length was checked when it was opened, so reading
/// its values cannot run out.
pub(super) struct Uints<'a> {
    bytes: &'a [u8],
    width: usize,
    at: usize,
}

impl Uints<'_> {
    /// `f` of every value, in order. The width is matched once, outside the loop, so each
    /// arm is a plain load loop.
    pub fn map<T>(&self, mut f: impl FnMut(u64) -> T) -> Vec<T> {
        match self.width {
            1 => self.bytes.iter().map(|&b| f(u64::from(b))).collect(),
            2 => self.bytes.chunks_exact(2).map(|c| f(u64::from(u16::from_le_bytes([c[0], c[1]])))).collect(),
            4 => self
                .bytes
                .chunks_exact(4)
                .map(|c| f(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
                .collect(),
            _ => self
                .bytes
                .chunks_exact(8)
                .map(|c| f(u64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect(),
        }
    }

    #[inline(always)]
    pub fn next(&mut self) -> u64 {
        let b = &self.bytes[self.at..self.at + self.width];
        self.at += self.width;
        match *b {
            [x] => u64::from(x),
            [x, y] => u64::from(u16::from_le_bytes([x, y])),
            [x, y, z, w] => u64::from(u32::from_le_bytes([x, y, z, w])),
            _ => u64::from_le_bytes(b.try_into().expect("8 bytes")),
        }
    }
}

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn byte(&mut self) -> Result<u8, WireError> {
        let b = *self.buf.get(self.pos).ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.pos += 1;
        Ok(b)
    }

    /// LEB128, with fast paths for the one- and two-byte cases that most values take.
    #[inline(always)]
    pub fn uvarint(&mut self) -> Result<u64, WireError> {
        match self.buf.get(self.pos..self.pos + 2) {
            Some(&[b, _]) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            Some(&[b0, b1]) if b1 < 0x80 => {
                self.pos += 2;
                Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7)
            }
            _ => self.uvarint_slow(),
        }
    }

    #[inline(never)]
    fn uvarint_slow(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(postcard::Error::DeserializeBadVarint.into())
    }

    #[inline(always)]
    pub fn ivarint(&mut self) -> Result<i64, WireError> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn str(&mut self) -> Result<&'a str, WireError> {
        let n = self.uvarint()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| postcard::Error::DeserializeBadUtf8.into())
    }

    pub fn string(&mut self) -> Result<String, WireError> {
        self.str().map(str::to_owned)
    }

    /// The next integer column, of `n` values.
    pub fn uints(&mut self, n: usize) -> Result<Uints<'a>, WireError> {
        let width = usize::from(self.byte()?);
        if !matches!(width, 1 | 2 | 4 | 8) {
            return Err(WireError::Inconsistent("integer width"));
        }
        Ok(Uints { bytes: self.take(n * width)?, width, at: 0 })
    }
}
