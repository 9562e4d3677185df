//! Image references (owned by the reference work in progress).
