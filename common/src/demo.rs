//! Deterministic demo farm generator (being written).
