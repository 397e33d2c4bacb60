//! The `int_enum!` macro: a Rust enum for one of ZooKeeper's numbered constants.

/// Declares an enum whose variants stand for fixed `i32` values on the wire, with
/// `code()`, `from_code()`, `ALL`, `From<Self> for i32` and `TryFrom<i32>` (unknown
/// values become [`crate::DecodeError::InvalidValue`]).
macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        #[repr(i32)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant = $value,
            )*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value on the wire.
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// The variant for a wire value, if the protocol defines one.
            pub const fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v.code()
            }
        }

        impl TryFrom<i32> for $name {
            type Error = $crate::DecodeError;

            fn try_from(code: i32) -> Result<Self, $crate::DecodeError> {
                $name::from_code(code).ok_or($crate::DecodeError::InvalidValue {
                    what: $what,
                    value: i64::from(code),
                })
            }
        }
    };
}
pub(crate) use int_enum;
