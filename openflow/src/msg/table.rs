//! TABLE_MOD: per-table configuration (eviction and vacancy events in 1.4).

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::message::{BodyCodec, require_version};
use crate::prop::{
    ExperimenterProperty, PROP_EXPERIMENTER, RawProperty, UnknownProperty, put_property,
};
use crate::types::TableName;
use crate::wire::{self, PResult};

flag_set! {
    /// Table configuration (`ofp_table_config`).
    pub struct TableConfig(u32) {
        /// Bits OpenFlow 1.1 and 1.2 used for table-miss behaviour; ignored since 1.3.
        DEPRECATED_MASK = 3 => "deprecated",
        /// OpenFlow 1.4: the switch may evict entries to make room.
        EVICTION = 1 << 2 => "eviction",
        /// OpenFlow 1.4: send TABLE_STATUS when vacancy crosses the thresholds.
        VACANCY_EVENTS = 1 << 3 => "vacancy_events",
    }
}

flag_set! {
    /// How the switch chooses entries to evict (`ofp_table_mod_prop_eviction_flag`).
    pub struct EvictionFlags(u32) {
        /// By other, switch-defined, factors.
        OTHER = 1 << 0 => "other",
        /// By flow entry importance.
        IMPORTANCE = 1 << 1 => "importance",
        /// By remaining lifetime.
        LIFETIME = 1 << 2 => "lifetime",
    }
}

/// Property type numbers of TABLE_MOD (`ofp_table_mod_prop_type`).
const PROP_EVICTION: u16 = 0x2;
const PROP_VACANCY: u16 = 0x3;
/// The property types TABLE_MOD defines.
const KNOWN_PROPS: [u16; 3] = [PROP_EVICTION, PROP_VACANCY, PROP_EXPERIMENTER];
/// What TABLE_MOD properties are called in errors.
const WHAT: &str = "table_mod property";

/// A TABLE_MOD property (OpenFlow 1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableModProp {
    /// `OFPTMPT_EVICTION`: how to choose entries to evict.
    Eviction(EvictionFlags),
    /// `OFPTMPT_VACANCY`: thresholds, in percent of free space, for vacancy events.
    Vacancy {
        /// Send an event when vacancy falls below this.
        vacancy_down: u8,
        /// Send an event when vacancy rises above this.
        vacancy_up: u8,
        /// Current vacancy (set by the switch in replies, 0 in requests).
        vacancy: u8,
    },
    /// `OFPTMPT_EXPERIMENTER`.
    Experimenter(ExperimenterProperty),
    /// A property type TABLE_MOD does not define, kept as it was.
    Unknown(UnknownProperty),
}

impl TableModProp {
    fn decode(i: &[u8]) -> PResult<'_, TableModProp> {
        let (rest, raw) = RawProperty::decode(i, WHAT)?;
        let prop = match raw.prop_type {
            PROP_EVICTION => {
                let (_, flags) = wire::u32(raw.fixed(8, "eviction property")?)?;
                TableModProp::Eviction(EvictionFlags(flags))
            }
            PROP_VACANCY => {
                let body = raw.fixed(8, "vacancy property")?;
                let (body, vacancy_down) = wire::u8(body)?;
                let (body, vacancy_up) = wire::u8(body)?;
                let (_, vacancy) = wire::u8(body)?;
                TableModProp::Vacancy {
                    vacancy_down,
                    vacancy_up,
                    vacancy,
                }
            }
            PROP_EXPERIMENTER => TableModProp::Experimenter(ExperimenterProperty::decode(&raw)?),
            _ => TableModProp::Unknown(UnknownProperty::from_raw(&raw)),
        };
        Ok((rest, prop))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            TableModProp::Eviction(flags) => {
                put_property(out, PROP_EVICTION, WHAT, |out| out.put_u32(flags.0))
            }
            TableModProp::Vacancy {
                vacancy_down,
                vacancy_up,
                vacancy,
            } => put_property(out, PROP_VACANCY, WHAT, |out| {
                out.put_u8(*vacancy_down);
                out.put_u8(*vacancy_up);
                out.put_u8(*vacancy);
                wire::put_zeros(out, 1);
            }),
            TableModProp::Experimenter(e) => e.encode(PROP_EXPERIMENTER, WHAT, out),
            TableModProp::Unknown(u) => u.encode(&KNOWN_PROPS, WHAT, out),
        }
    }
}

impl fmt::Display for TableModProp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableModProp::Eviction(flags) => write!(f, "eviction_flags={flags}"),
            TableModProp::Vacancy {
                vacancy_down,
                vacancy_up,
                vacancy,
            } => write!(f, "vacancy={vacancy_down}..{vacancy_up} (now {vacancy})"),
            TableModProp::Experimenter(e) => write!(f, "{e}"),
            TableModProp::Unknown(u) => write!(f, "{u}"),
        }
    }
}

/// The body of TABLE_MOD (`ofp_table_mod`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableMod {
    /// The table, or [`TABLE_ALL`](crate::TABLE_ALL).
    pub table_id: u8,
    /// Its configuration.
    pub config: TableConfig,
    /// OpenFlow 1.4 properties; must be empty in OpenFlow 1.3.
    pub properties: Vec<TableModProp>,
}

impl TableMod {
    /// A TABLE_MOD without properties.
    pub fn new(table_id: u8, config: TableConfig) -> Self {
        TableMod {
            table_id,
            config,
            properties: Vec::new(),
        }
    }
}

impl BodyCodec for TableMod {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, table_id) = wire::u8(i)?;
        let (rest, ()) = wire::pad(rest, 3)?;
        let (rest, config) = wire::u32(rest)?;
        let (rest, properties) = if version >= Version::OF14 {
            wire::many(rest, TableModProp::decode)?
        } else {
            let (rest, ()) = wire::all_consumed(rest, "table_mod")?;
            (rest, Vec::new())
        };
        Ok((
            rest,
            TableMod {
                table_id,
                config: TableConfig(config),
                properties,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        require_version(
            self.properties.is_empty() || version >= Version::OF14,
            "table_mod properties",
            version,
        )?;
        out.put_u8(self.table_id);
        wire::put_zeros(out, 3);
        out.put_u32(self.config.0);
        self.properties.iter().try_for_each(|p| p.encode(out))
    }
}

impl fmt::Display for TableMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table_id={} config={}",
            TableName(self.table_id),
            self.config
        )?;
        for p in &self.properties {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Message};
    use bytes::Bytes;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn ryu_of13_table_mod_round_trips() {
        let bytes = hex("0411001000000000ff00000000000000");
        let msg = Message::decode(&bytes).unwrap();
        assert_eq!(
            msg.body,
            Body::TableMod(TableMod::new(crate::TABLE_ALL, TableConfig(0)))
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            msg.to_string(),
            "TABLE_MOD (OF1.3) (xid=0x0): table_id=ALL config=0"
        );
    }

    #[test]
    fn ryu_of14_table_mod_with_properties_round_trips() {
        let bytes = hex(concat!(
            "0511005800000000ff00000000000000",
            "00020008000000000003000800000000",
            "ffff000c000000650000000000000000",
            "ffff0010000000650000000100000001",
            "ffff0014000000650000000200000001",
            "0000000200000000",
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::TableMod(tm) = &msg.body else {
            panic!("{msg:?}")
        };
        let exp = |exp_type, data: &'static [u8]| {
            TableModProp::Experimenter(ExperimenterProperty {
                experimenter: crate::ExperimenterId(101),
                exp_type,
                data: Bytes::from_static(data),
            })
        };
        assert_eq!(
            tm.properties,
            [
                TableModProp::Eviction(EvictionFlags(0)),
                TableModProp::Vacancy {
                    vacancy_down: 0,
                    vacancy_up: 0,
                    vacancy: 0
                },
                exp(0, &[]),
                exp(1, &[0, 0, 0, 1]),
                exp(2, &[0, 0, 0, 1, 0, 0, 0, 2]),
            ]
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn properties_need_of14() {
        let mut tm = TableMod::new(1, TableConfig::EVICTION);
        tm.properties
            .push(TableModProp::Eviction(EvictionFlags::IMPORTANCE));
        let msg = Message::new(Version::OF13, 0, Body::TableMod(tm.clone()));
        assert!(matches!(
            msg.encode(),
            Err(EncodeError::WrongVersion { version: 4, .. })
        ));
        let msg = Message::new(Version::OF14, 0, Body::TableMod(tm));
        let bytes = msg.encode().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "051100180000000001000000000000040002000800000002"
        );
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
        assert_eq!(
            msg.to_string(),
            "TABLE_MOD (OF1.4) (xid=0x0): table_id=1 config=eviction eviction_flags=importance"
        );
    }

    #[test]
    fn unknown_properties_round_trip_and_bad_ones_fail() {
        let bytes = hex("0511001800000000010000000000000000070006abcd0000");
        let msg = Message::decode(&bytes).unwrap();
        let Body::TableMod(tm) = &msg.body else {
            panic!()
        };
        assert_eq!(
            tm.properties,
            [TableModProp::Unknown(UnknownProperty {
                prop_type: 7,
                data: Bytes::from_static(&[0xab, 0xcd])
            })]
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        // An eviction property of the wrong length.
        let bad = hex("051100200000000001000000000000000002000c000000000000000000000000");
        let err = Message::decode(&bad).unwrap_err();
        assert_eq!(err.offset, 18);
        // Properties in OpenFlow 1.3 are trailing bytes.
        let mut of13 = bytes.clone();
        of13[0] = 4;
        let err = Message::decode(&of13).unwrap_err();
        assert_eq!(err.offset, 16);
    }
}
