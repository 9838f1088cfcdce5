//! The two declaration macros every codec module uses: `wire_enum!` for
//! enumerations and `flag_set!` for bit sets.
//!
//! Both declare a newtype over the wire integer rather than a Rust `enum`, so
//! a value this crate has no name for still decodes, compares, prints and
//! re-encodes unchanged; the names are associated constants.

/// Declares a wire enumeration: a newtype over its integer with one associated
/// constant and one display name per known value.
///
/// `Display` writes the name, or the number for an unknown value: in decimal,
/// or with the format given after `as` (`struct ActionType(u16) as "0x{:04x}"`).
///
/// ```text
/// wire_enum! {
///     /// What a GROUP_MOD does (`OFPGC_*`).
///     pub struct GroupCommand(u16) {
///         /// Add a new group.
///         ADD = 0 => "add",
///     }
/// }
/// ```
macro_rules! wire_enum {
    (@unknown $f:ident, $value:expr) => {
        write!($f, "{}", $value)
    };
    (@unknown $f:ident, $value:expr, $format:literal) => {
        write!($f, $format, $value)
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($int:ty) $(as $unknown:literal)? {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        $vis struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// The conventional (ovs-ofctl or specification) name of the
            /// value, if it is one this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$konst => Some($text), )*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => wire_enum!(@unknown f, self.0 $(, $unknown)?),
                }
            }
        }
    };
}

/// Declares a set of flag bits: a newtype bitfield with one associated
/// constant and one display name per known flag.
///
/// Bits without a name are kept. `Display` writes the names of the flags set,
/// `|`-separated, then any other bits in hex; the empty set is `0`, as
/// `ovs-ofctl` writes it.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize,
        )]
        #[serde(transparent)]
        $vis struct $name(pub $int);

        #[allow(dead_code)]
        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// Every flag this crate has a name for.
            pub const KNOWN: $name = $name(0 $(| $value)*);

            /// The named flags and their names, in declaration order.
            pub(crate) const NAMES: &'static [($int, &'static str)] = &[$(($value, $text)),*];

            /// No flag set.
            pub const fn empty() -> $name {
                $name(0)
            }

            /// Whether no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether `self` and `other` have a bit in common.
            pub const fn intersects(self, other: $name) -> bool {
                self.0 & other.0 != 0
            }

            /// The names of the flags set, in declaration order.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                $name::NAMES
                    .iter()
                    .filter(move |(bit, _)| *bit != 0 && self.0 & *bit == *bit)
                    .map(|(_, name)| *name)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                $name(self.0 | rhs.0)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) {
                self.0 |= rhs.0;
            }
        }

        impl std::ops::BitAnd for $name {
            type Output = $name;
            fn bitand(self, rhs: $name) -> $name {
                $name(self.0 & rhs.0)
            }
        }

        impl std::ops::BitAndAssign for $name {
            fn bitand_assign(&mut self, rhs: $name) {
                self.0 &= rhs.0;
            }
        }

        impl std::ops::Not for $name {
            type Output = $name;
            fn not(self) -> $name {
                $name(!self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if self.0 == 0 {
                    return f.write_str("0");
                }
                let mut rest = self.0;
                let mut first = true;
                for &(bit, name) in $name::NAMES {
                    if bit != 0 && self.0 & bit == bit {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        first = false;
                        rest &= !bit;
                    }
                }
                if rest != 0 {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{:#x}", rest)?;
                }
                Ok(())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    flag_set! {
        /// Test flags.
        struct TestFlags(u16) {
            /// A.
            A = 1 => "a",
            /// B.
            B = 4 => "b",
            /// Two bits under one name.
            PAIR = 0x300 => "pair",
        }
    }

    wire_enum! {
        /// Test enumeration.
        struct TestEnum(u8) {
            /// One.
            ONE = 1 => "one",
        }
    }

    wire_enum! {
        /// Test enumeration shown in hex when unknown.
        struct HexEnum(u16) as "0x{:04x}" {
            /// One.
            ONE = 1 => "ONE",
        }
    }

    #[test]
    fn flag_sets_show_names_then_unknown_bits() {
        assert_eq!(TestFlags(0).to_string(), "0");
        assert_eq!((TestFlags::A | TestFlags::B).to_string(), "a|b");
        assert_eq!(TestFlags(0x13).to_string(), "a|0x12");
        assert_eq!(TestFlags(0x10).to_string(), "0x10");
        assert_eq!(TestFlags(0x100).to_string(), "0x100");
        assert_eq!(TestFlags(0x301).to_string(), "a|pair");
        assert_eq!(TestFlags(5).names().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn flag_sets_combine() {
        assert!(TestFlags(5).contains(TestFlags::B));
        assert!(!TestFlags::A.contains(TestFlags(5)));
        assert!(TestFlags(5).intersects(TestFlags(0x11)));
        assert!(TestFlags::empty().is_empty() && !TestFlags::A.is_empty());
        assert_eq!(TestFlags::KNOWN, TestFlags(0x305));
        assert_eq!(TestFlags(5) & TestFlags::B, TestFlags::B);
        assert_eq!(!TestFlags(0xfffe), TestFlags::A);
        let mut flags = TestFlags::A;
        flags |= TestFlags::B;
        assert_eq!(flags, TestFlags(5));
        flags &= TestFlags::B;
        assert_eq!(flags, TestFlags::B);
        assert_eq!(TestFlags::default(), TestFlags::empty());
    }

    #[test]
    fn enums_show_names_or_numbers() {
        assert_eq!(TestEnum::ONE.to_string(), "one");
        assert_eq!(TestEnum(9).to_string(), "9");
        assert_eq!(TestEnum(9).name(), None);
        assert_eq!(HexEnum(0x1234).to_string(), "0x1234");
        assert_eq!(HexEnum::ONE.to_string(), "ONE");
    }
}
