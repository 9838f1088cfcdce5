//! Meters: METER_MOD and meter bands.

use crate::stub::opaque_stub;

opaque_stub!(MeterMod);
