//! The endpoint and label tables: every endpoint and label is stored once
//! and referred to by a four-byte index, which keeps flow keys small.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::Endpoint;
use crate::window::EndpointId;

/// A label (`tier=web`), by its index in the label table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelId(pub u32);

/// The id of [`Endpoint::outside`], which every table holds from the
/// start.
pub const OUTSIDE: EndpointId = EndpointId(0);

/// The label every external address carries, so that label-pair signatures
/// show traffic leaving the inventory (`tier=web → @external`).
pub const EXTERNAL_LABEL: &str = "@external";

/// Endpoints and their labels.
#[derive(Debug, Clone)]
pub struct Endpoints {
    ids: HashMap<Endpoint, EndpointId>,
    endpoints: Vec<Endpoint>,
    endpoint_labels: Vec<Box<[LabelId]>>,
    label_ids: HashMap<Arc<str>, LabelId>,
    labels: Vec<Arc<str>>,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        let mut table = Endpoints {
            ids: HashMap::new(),
            endpoints: Vec::new(),
            endpoint_labels: Vec::new(),
            label_ids: HashMap::new(),
            labels: Vec::new(),
        };
        table.label(EXTERNAL_LABEL);
        table.intern(&Endpoint::outside());
        table
    }
}

impl Endpoints {
    /// An empty table.
    pub fn new() -> Endpoints {
        Endpoints::default()
    }

    /// The id of `endpoint`, adding it if it is new. External addresses get
    /// the [`EXTERNAL_LABEL`].
    pub fn intern(&mut self, endpoint: &Endpoint) -> EndpointId {
        if let Some(&id) = self.ids.get(endpoint) {
            return id;
        }
        let id = EndpointId(u32::try_from(self.endpoints.len()).unwrap_or(u32::MAX));
        self.ids.insert(endpoint.clone(), id);
        self.endpoints.push(endpoint.clone());
        let labels: Box<[LabelId]> = match endpoint {
            Endpoint::External(_) => Box::new([self.label(EXTERNAL_LABEL)]),
            Endpoint::Vm(_) => Box::new([]),
        };
        self.endpoint_labels.push(labels);
        id
    }

    /// The id of `endpoint`, if it is known.
    pub fn get(&self, endpoint: &Endpoint) -> Option<EndpointId> {
        self.ids.get(endpoint).copied()
    }

    /// The endpoint with this id.
    pub fn endpoint(&self, id: EndpointId) -> Option<&Endpoint> {
        self.endpoints.get(id.0 as usize)
    }

    /// How many endpoints are known.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether no endpoint is known.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Every endpoint with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (EndpointId, &Endpoint)> {
        self.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (EndpointId(i as u32), e))
    }

    /// The id of a label (`key=value`), adding it if it is new.
    pub fn label(&mut self, text: &str) -> LabelId {
        if let Some(&id) = self.label_ids.get(text) {
            return id;
        }
        let id = LabelId(u32::try_from(self.labels.len()).unwrap_or(u32::MAX));
        let text: Arc<str> = Arc::from(text);
        self.label_ids.insert(text.clone(), id);
        self.labels.push(text);
        id
    }

    /// The id of a label, if it is known.
    pub fn get_label(&self, text: &str) -> Option<LabelId> {
        self.label_ids.get(text).copied()
    }

    /// The text of a label.
    pub fn label_text(&self, id: LabelId) -> Option<&str> {
        self.labels.get(id.0 as usize).map(|s| &**s)
    }

    /// Replaces the labels of `endpoint` (adding the endpoint if it is new):
    /// each `(key, value)` becomes the label `key=value`. External addresses
    /// keep the [`EXTERNAL_LABEL`]. Traffic already summarised stays under
    /// the labels it had.
    pub fn set_labels<'a>(
        &mut self,
        endpoint: &Endpoint,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> EndpointId {
        let id = self.intern(endpoint);
        let mut ids: Vec<LabelId> = labels
            .into_iter()
            .map(|(k, v)| self.label(&format!("{k}={v}")))
            .collect();
        if matches!(endpoint, Endpoint::External(_)) {
            ids.push(self.label(EXTERNAL_LABEL));
        }
        ids.sort_unstable();
        ids.dedup();
        if let Some(slot) = self.endpoint_labels.get_mut(id.0 as usize) {
            *slot = ids.into_boxed_slice();
        }
        id
    }

    /// The labels of an endpoint.
    pub fn labels_of(&self, id: EndpointId) -> &[LabelId] {
        self.endpoint_labels
            .get(id.0 as usize)
            .map_or(&[][..], |labels| &labels[..])
    }

    /// The labels of an endpoint as `key=value` text.
    pub fn label_texts(&self, id: EndpointId) -> Vec<&str> {
        self.labels_of(id)
            .iter()
            .filter_map(|&l| self.label_text(l))
            .collect()
    }

    /// Heap bytes held, approximately (the benches report it per key).
    pub fn heap_bytes(&self) -> usize {
        let endpoint_entry = size_of::<Endpoint>() + size_of::<EndpointId>() + 1;
        self.ids.capacity() * endpoint_entry
            + self.endpoints.capacity() * size_of::<Endpoint>()
            + self.endpoint_labels.capacity() * size_of::<Box<[LabelId]>>()
    }
}
