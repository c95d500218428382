//! JSON kept compressed against recent JSON of the same kind ([`Packer`], [`Packed`]).
//!
//! The kept workspaces' spec and status and the poller's observations are one JSON document
//! per workspace, about 1.8 KB and 1.2 KB at 10,000 workspaces on the real control plane (a
//! jemalloc heap profile, docs/benchmarks.md), and a fifth of the operator's heap. Documents
//! of one kind differ little: the same keys, the same condition messages, different names,
//! ids and times. Each is compressed (LZ4) with a few recent documents of its kind as the
//! dictionary, so what is stored is mostly what is its own. The dictionary, a *reference*,
//! is shared by the documents packed with it and changes as documents change: every
//! [`ROTATE`] packs the last [`SAMPLES`] sampled documents become the next one; a reference
//! is freed with the last document packed with it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Packs between two references.
const ROTATE: u32 = 256;
/// Documents a reference is made of (one sampled every `ROTATE / SAMPLES` packs).
const SAMPLES: usize = 4;

/// The reference documents are packed with, for one kind of document.
#[derive(Debug)]
pub struct Packer {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    reference: Arc<[u8]>,
    packs: u32,
    samples: VecDeque<Box<[u8]>>,
}

/// A document packed: its reference and its compressed bytes (with its length before them).
#[derive(Clone, Debug)]
pub struct Packed {
    reference: Arc<[u8]>,
    bytes: Box<[u8]>,
}

impl Packer {
    /// A packer whose first documents are packed with no reference (until the first
    /// rotation).
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                reference: Arc::from(&[][..]),
                packs: 0,
                samples: VecDeque::new(),
            }),
        }
    }

    /// Packs a document with the current reference; every so often the document is also
    /// sampled for the next reference.
    pub fn pack(&self, document: &[u8]) -> Packed {
        let reference = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.packs = s.packs.wrapping_add(1);
            if s.packs.is_multiple_of(ROTATE / SAMPLES as u32) {
                if s.samples.len() == SAMPLES {
                    s.samples.pop_front();
                }
                s.samples.push_back(document.into());
            }
            if s.packs.is_multiple_of(ROTATE) {
                s.reference = s.samples.iter().flat_map(|d| d.iter().copied()).collect();
            }
            s.reference.clone()
        };
        let bytes = lz4_flex::block::compress_prepend_size_with_dict(document, &reference);
        Packed {
            reference,
            bytes: bytes.into_boxed_slice(),
        }
    }
}

impl Packed {
    /// The document as it was packed.
    pub fn unpack(&self) -> Result<Vec<u8>, lz4_flex::block::DecompressError> {
        lz4_flex::block::decompress_size_prepended_with_dict(&self.bytes, &self.reference)
    }

    /// Whether this is `document` packed: unpacks, and packs nothing.
    pub fn holds(&self, document: &[u8]) -> bool {
        self.unpack().is_ok_and(|d| d == document)
    }
}

/// Two packed documents are equal when their documents are.
impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        if Arc::ptr_eq(&self.reference, &other.reference) {
            return self.bytes == other.bytes;
        }
        match (self.unpack(), other.unpack()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Default for Packer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(i: u32, phase: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "spec": {"deploymentType": "PERSISTENT_2", "storageCapacityGiB": 1200},
            "status": {
                "phase": phase, "fileSystemId": format!("fs-{i:017x}"),
                "dnsName": format!("fs-{i:017x}.fsx.us-east-1.amazonaws.com"),
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Ready",
                     "message": format!("file system fs-{i:017x} is AVAILABLE and claim ws-{i} is bound"),
                     "lastTransitionTime": format!("2026-12-05T07:{:02}:{:02}Z", i / 60 % 60, i % 60)},
                    {"type": "FileSystemReady", "status": "True", "reason": "Available",
                     "message": "the file system is AVAILABLE",
                     "lastTransitionTime": "2026-12-05T07:00:00Z"}
                ]
            }
        }))
        .expect("json")
    }

    /// Every document comes back as packed, across rotations of the reference (documents
    /// packed with an old reference still read back), and documents like the recent ones
    /// take a fraction of their size.
    #[test]
    fn documents_read_back_across_references_and_shrink() {
        let packer = Packer::new();
        let packed: Vec<(Vec<u8>, Packed)> = (0..1_000)
            .map(|i| {
                let d = document(i, if i % 3 == 0 { "Provisioning" } else { "Ready" });
                let p = packer.pack(&d);
                (d, p)
            })
            .collect();
        for (d, p) in &packed {
            assert_eq!(&p.unpack().expect("unpacks"), d);
        }
        let (raw, kept): (usize, usize) = packed[ROTATE as usize..]
            .iter()
            .map(|(d, p)| (d.len(), p.bytes.len()))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        println!("packed {kept} of {raw} bytes");
        assert!(kept * 3 < raw, "packed {kept} of {raw} bytes");
        // The references in use: the first (empty) and one per rotation, shared.
        let first = &packed[0].1.reference;
        assert!(first.is_empty());
        assert!(Arc::ptr_eq(
            &packed[ROTATE as usize].1.reference,
            &packed[ROTATE as usize + 1].1.reference
        ));
    }

    /// Equal documents are equal packed, whether packed with the same reference or not;
    /// different ones are not.
    #[test]
    fn packed_documents_compare_as_their_documents() {
        let packer = Packer::new();
        let first = packer.pack(&document(1, "Ready"));
        for i in 0..ROTATE {
            packer.pack(&document(i + 2, "Ready"));
        }
        let again = packer.pack(&document(1, "Ready"));
        assert!(!Arc::ptr_eq(&first.reference, &again.reference));
        assert_eq!(first, again);
        assert_eq!(again, packer.pack(&document(1, "Ready")));
        assert_ne!(again, packer.pack(&document(1, "Provisioning")));
        // A document is looked for in a packed one without packing it, across references.
        assert!(first.holds(&document(1, "Ready")) && again.holds(&document(1, "Ready")));
        assert!(!first.holds(&document(1, "Provisioning")) && !first.holds(&document(2, "Ready")));
    }
}
