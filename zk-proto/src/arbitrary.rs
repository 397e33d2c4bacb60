//! Property-test strategies for every record (test builds only).
//!
//! Records declared with `jute_record!` get a strategy composed from their fields';
//! the enums and multi records implement [`ArbitraryRecord`] by hand beside their code.

use bytes::Bytes;
use proptest::prelude::*;

/// A type with a proptest strategy producing any valid value of it.
pub trait ArbitraryRecord: Sized + std::fmt::Debug {
    /// A strategy over all valid values (bounded in size so tests stay fast).
    fn strategy() -> BoxedStrategy<Self>;
}

impl ArbitraryRecord for i32 {
    fn strategy() -> BoxedStrategy<Self> {
        any::<i32>().boxed()
    }
}

impl ArbitraryRecord for i64 {
    fn strategy() -> BoxedStrategy<Self> {
        any::<i64>().boxed()
    }
}

impl ArbitraryRecord for bool {
    fn strategy() -> BoxedStrategy<Self> {
        any::<bool>().boxed()
    }
}

impl ArbitraryRecord for String {
    fn strategy() -> BoxedStrategy<Self> {
        // Any Unicode, including multi-byte characters.
        ".{0,24}".boxed()
    }
}

impl ArbitraryRecord for Bytes {
    fn strategy() -> BoxedStrategy<Self> {
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(Bytes::from)
            .boxed()
    }
}

impl<T: ArbitraryRecord + 'static> ArbitraryRecord for Option<T> {
    fn strategy() -> BoxedStrategy<Self> {
        proptest::option::of(T::strategy()).boxed()
    }
}

impl<T: ArbitraryRecord + 'static> ArbitraryRecord for Vec<T> {
    fn strategy() -> BoxedStrategy<Self> {
        proptest::collection::vec(T::strategy(), 0..6).boxed()
    }
}
