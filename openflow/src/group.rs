//! Groups: GROUP_MOD and buckets.

use crate::stub::opaque_stub;

opaque_stub!(GroupMod);
