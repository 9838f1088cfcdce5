//! Ports: descriptions (OF1.3 and the property-based OF1.4 form), PORT_STATUS and PORT_MOD.

use crate::stub::opaque_stub;

opaque_stub!(PortStatus, PortMod);
