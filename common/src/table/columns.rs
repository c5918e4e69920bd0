//! Narrow per-row storage for the table's integer columns.

/// Dictionary codes, one per row, as narrow as the dictionary allows: most dimensions have
/// fewer than 256 values, so a million rows of them take 1 MB instead of 4 (issue 4's
/// memory budget is 50 bytes per job for all columns). The width follows from the
/// dictionary size alone, so equal tables have equal widths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    /// Codes for a dictionary of `card` values (code 0 included), in the narrowest width.
    pub fn new(codes: impl IntoIterator<Item = u32>, card: usize) -> Codes {
        let codes = codes.into_iter();
        if card <= 1 << 8 {
            Codes::U8(codes.map(|c| c as u8).collect())
        } else if card <= 1 << 16 {
            Codes::U16(codes.map(|c| c as u16).collect())
        } else {
            Codes::U32(codes.collect())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Codes::U8(c) => c.len(),
            Codes::U16(c) => c.len(),
            Codes::U32(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The code of row `row`.
    #[inline(always)]
    pub fn get(&self, row: usize) -> u32 {
        match self {
            Codes::U8(c) => u32::from(c[row]),
            Codes::U16(c) => u32::from(c[row]),
            Codes::U32(c) => c[row],
        }
    }

    /// The codes of `rows`, widened. The width is matched once, outside the loop.
    pub fn gather(&self, rows: &[u32]) -> Vec<u32> {
        match self {
            Codes::U8(c) => rows.iter().map(|&r| u32::from(c[r as usize])).collect(),
            Codes::U16(c) => rows.iter().map(|&r| u32::from(c[r as usize])).collect(),
            Codes::U32(c) => rows.iter().map(|&r| c[r as usize]).collect(),
        }
    }

    /// Every code, widened.
    pub fn to_u32s(&self) -> Vec<u32> {
        match self {
            Codes::U8(c) => c.iter().map(|&x| u32::from(x)).collect(),
            Codes::U16(c) => c.iter().map(|&x| u32::from(x)).collect(),
            Codes::U32(c) => c.clone(),
        }
    }

    /// The largest code, 0 when empty.
    pub fn max(&self) -> u32 {
        match self {
            Codes::U8(c) => c.iter().copied().max().map_or(0, u32::from),
            Codes::U16(c) => c.iter().copied().max().map_or(0, u32::from),
            Codes::U32(c) => c.iter().copied().max().unwrap_or(0),
        }
    }

    /// Bytes of row storage.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Codes::U8(c) => c.capacity(),
            Codes::U16(c) => c.capacity() * 2,
            Codes::U32(c) => c.capacity() * 4,
        }
    }
}

/// Small non-negative per-row integers (time offsets in ms, with marker values): u32 while
/// every value fits, which covers waits and runs up to 49 days, else u64. The width follows
/// from the values alone, so equal tables have equal widths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offsets {
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets::U32(Vec::new())
    }
}

impl Offsets {
    pub fn with_capacity(n: usize) -> Self {
        Offsets::U32(Vec::with_capacity(n))
    }

    /// Appends a value, widening the column the first time one does not fit in u32.
    #[inline(always)]
    pub fn push(&mut self, v: u64) {
        match self {
            Offsets::U32(c) if v <= u64::from(u32::MAX) => c.push(v as u32),
            _ => self.push_wide(v),
        }
    }

    #[inline(never)]
    fn push_wide(&mut self, v: u64) {
        if let Offsets::U32(c) = self {
            *self = Offsets::U64(c.iter().map(|&x| u64::from(x)).collect());
        }
        if let Offsets::U64(c) = self {
            c.push(v);
        }
    }

    #[inline(always)]
    pub fn get(&self, row: usize) -> u64 {
        match self {
            Offsets::U32(c) => u64::from(c[row]),
            Offsets::U64(c) => c[row],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Offsets::U32(c) => c.len(),
            Offsets::U64(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `f` of each of `rows`' values. The width is matched once, outside the loop.
    #[inline]
    pub fn gather<T>(&self, rows: &[u32], f: impl Fn(u64) -> T) -> Vec<T> {
        match self {
            Offsets::U32(c) => rows.iter().map(|&r| f(u64::from(c[r as usize]))).collect(),
            Offsets::U64(c) => rows.iter().map(|&r| f(c[r as usize])).collect(),
        }
    }

    /// Bytes of row storage.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Offsets::U32(c) => c.capacity() * 4,
            Offsets::U64(c) => c.capacity() * 8,
        }
    }
}

/// A dictionary's values in one buffer, so a table holds one allocation per dimension
/// rather than one per distinct value (75,000 revisions at a million demo jobs), and
/// decoding one does not spend its time in the allocator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Strings {
    text: String,
    /// End of each value in `text`.
    ends: Vec<u32>,
}

impl Strings {
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(u32::try_from(self.text.len()).expect("dictionaries stay below 4 GiB"));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Drops spare capacity once all values are in.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// Bytes of storage.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 4
    }
}

impl std::ops::Index<usize> for Strings {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        self.get(i)
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut strings = Strings::default();
        for s in iter {
            strings.push(s.as_ref());
        }
        strings
    }
}
