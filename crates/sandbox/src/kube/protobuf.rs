//! The protobuf bodies kubectl sends for built-in kinds, decoded to the JSON the rest of the
//! sandbox stores.
//!
//! Since Kubernetes 1.35 the generated typed clients prefer protobuf, so `kubectl create
//! namespace|configmap|secret|serviceaccount` send `application/vnd.kubernetes.protobuf`
//! (`kubectl apply -f` still sends JSON). The envelope is the four bytes `k8s\0` and a
//! `runtime.Unknown` whose `raw` field holds the object. The sandbox decodes the kinds those
//! commands create, from the field numbers of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`; a field it does not know is refused
//! by name (never dropped), and any other kind gets the 415 kube-apiserver gives for an
//! encoding it does not serve.

use serde_json::{Map, Value, json};

/// How a field's value is written in JSON.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    Msg(&'static [Field]),
    /// `meta.v1.Time`: RFC 3339, null when zero.
    Time,
    RepStr,
    RepMsg(&'static [Field]),
    MapStr,
    MapBytes,
}

struct Field(u32, &'static str, Kind);

const OWNER_REFERENCE: &[Field] = &[
    Field(1, "kind", Kind::Str),
    Field(3, "name", Kind::Str),
    Field(4, "uid", Kind::Str),
    Field(5, "apiVersion", Kind::Str),
    Field(6, "controller", Kind::Bool),
    Field(7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    Field(1, "name", Kind::Str),
    Field(2, "generateName", Kind::Str),
    Field(3, "namespace", Kind::Str),
    Field(4, "selfLink", Kind::Str),
    Field(5, "uid", Kind::Str),
    Field(6, "resourceVersion", Kind::Str),
    Field(7, "generation", Kind::Int),
    Field(8, "creationTimestamp", Kind::Time),
    Field(9, "deletionTimestamp", Kind::Time),
    Field(10, "deletionGracePeriodSeconds", Kind::Int),
    Field(11, "labels", Kind::MapStr),
    Field(12, "annotations", Kind::MapStr),
    Field(13, "ownerReferences", Kind::RepMsg(OWNER_REFERENCE)),
    Field(14, "finalizers", Kind::RepStr),
];

const OBJECT_REFERENCE: &[Field] = &[
    Field(1, "kind", Kind::Str),
    Field(2, "namespace", Kind::Str),
    Field(3, "name", Kind::Str),
    Field(4, "uid", Kind::Str),
    Field(5, "apiVersion", Kind::Str),
    Field(6, "resourceVersion", Kind::Str),
    Field(7, "fieldPath", Kind::Str),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[Field(1, "name", Kind::Str)];

const NAMESPACE: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(
        2,
        "spec",
        Kind::Msg(&[Field(1, "finalizers", Kind::RepStr)]),
    ),
    Field(3, "status", Kind::Msg(&[Field(1, "phase", Kind::Str)])),
];

const CONFIG_MAP: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "data", Kind::MapStr),
    Field(3, "binaryData", Kind::MapBytes),
    Field(4, "immutable", Kind::Bool),
];

const SECRET: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "data", Kind::MapBytes),
    Field(3, "type", Kind::Str),
    Field(4, "stringData", Kind::MapStr),
    Field(5, "immutable", Kind::Bool),
];

const SERVICE_ACCOUNT: &[Field] = &[
    Field(1, "metadata", Kind::Msg(OBJECT_META)),
    Field(2, "secrets", Kind::RepMsg(OBJECT_REFERENCE)),
    Field(3, "imagePullSecrets", Kind::RepMsg(LOCAL_OBJECT_REFERENCE)),
    Field(4, "automountServiceAccountToken", Kind::Bool),
];

/// The core/v1 kinds decoded here.
fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "ServiceAccount") => Some(SERVICE_ACCOUNT),
        _ => None,
    }
}

/// Why a body could not be decoded: the message for a 415.
pub type Refusal = String;

/// A Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) as the JSON object it encodes.
pub fn decode(body: &[u8]) -> Result<Value, Refusal> {
    let unknown = body
        .strip_prefix(b"k8s\0")
        .ok_or("the body does not start with the Kubernetes protobuf magic k8s\\0")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (num, value) in fields(unknown)? {
        match (num, value) {
            (1, Wire::Len(type_meta)) => {
                for (n, v) in fields(type_meta)? {
                    match (n, v) {
                        (1, Wire::Len(s)) => api_version = utf8(s)?,
                        (2, Wire::Len(s)) => kind = utf8(s)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(bytes)) => raw = Some(bytes),
            (3, Wire::Len(encoding)) if !encoding.is_empty() => {
                return Err(format!(
                    "content encoding {} is not supported",
                    utf8(encoding)?
                ));
            }
            _ => {}
        }
    }
    let schema = schema(&api_version, &kind).ok_or_else(|| {
        format!("the sandbox decodes protobuf bodies of v1 Namespace, ConfigMap, Secret and ServiceAccount only, not {api_version} {kind} (kubectl apply -f sends JSON)")
    })?;
    let mut obj = message(raw.unwrap_or_default(), schema, &kind)?;
    let map = obj.as_object_mut().expect("a message is an object");
    map.insert("apiVersion".into(), json!(api_version));
    map.insert("kind".into(), json!(kind));
    Ok(obj)
}

/// A field's value on the wire.
enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
}

/// The `(field number, value)` pairs of one message, in order.
fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, Refusal> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let num = u32::try_from(key >> 3).map_err(|_| "field number out of range")?;
        match key & 7 {
            0 => out.push((num, Wire::Varint(varint(&mut buf)?))),
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| "length too large")?;
                if len > buf.len() {
                    return Err("truncated protobuf body".into());
                }
                let (value, rest) = buf.split_at(len);
                out.push((num, Wire::Len(value)));
                buf = rest;
            }
            wire => {
                return Err(format!(
                    "protobuf wire type {wire} is not used by these kinds"
                ));
            }
        }
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, Refusal> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or("truncated protobuf varint")?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("protobuf varint longer than 64 bits".into())
}

fn utf8(bytes: &[u8]) -> Result<String, Refusal> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".into())
}

/// One message as a JSON object; `path` names it in a refusal. Empty strings and zero times
/// are left out, as Go's JSON encoding of these types omits them.
fn message(buf: &[u8], schema: &[Field], path: &str) -> Result<Value, Refusal> {
    let mut obj = Map::new();
    for (num, wire) in fields(buf)? {
        let Some(Field(_, name, kind)) = schema.iter().find(|f| f.0 == num) else {
            return Err(format!(
                "field {num} of {path} is not one the sandbox decodes from protobuf (send JSON: kubectl apply -f)"
            ));
        };
        let here = format!("{path}.{name}");
        let mismatch = || format!("{here}: unexpected protobuf wire type");
        match (*kind, wire) {
            (Kind::Str, Wire::Len(s)) => {
                let s = utf8(s)?;
                if !s.is_empty() {
                    obj.insert((*name).into(), json!(s));
                }
            }
            (Kind::Bool, Wire::Varint(v)) => {
                obj.insert((*name).into(), json!(v != 0));
            }
            (Kind::Int, Wire::Varint(v)) => {
                if v != 0 {
                    obj.insert((*name).into(), json!(v as i64));
                }
            }
            (Kind::Msg(inner), Wire::Len(b)) => {
                let value = message(b, inner, &here)?;
                if value.as_object().is_some_and(|m| !m.is_empty()) {
                    obj.insert((*name).into(), value);
                }
            }
            (Kind::Time, Wire::Len(b)) => {
                if let Some(t) = time(b, &here)? {
                    obj.insert((*name).into(), json!(t));
                }
            }
            (Kind::RepStr, Wire::Len(s)) => push(&mut obj, name, json!(utf8(s)?)),
            (Kind::RepMsg(inner), Wire::Len(b)) => push(&mut obj, name, message(b, inner, &here)?),
            (Kind::MapStr | Kind::MapBytes, Wire::Len(entry)) => {
                let (mut key, mut value) = (String::new(), Value::String(String::new()));
                for (n, w) in fields(entry)? {
                    match (n, w) {
                        (1, Wire::Len(k)) => key = utf8(k)?,
                        (2, Wire::Len(v)) if matches!(kind, Kind::MapStr) => {
                            value = json!(utf8(v)?)
                        }
                        (2, Wire::Len(v)) => value = json!(base64(v)),
                        _ => return Err(mismatch()),
                    }
                }
                obj.entry(*name)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("a map")
                    .insert(key, value);
            }
            _ => return Err(mismatch()),
        }
    }
    Ok(Value::Object(obj))
}

fn push(obj: &mut Map<String, Value>, name: &str, item: Value) {
    if let Some(items) = obj.entry(name).or_insert_with(|| json!([])).as_array_mut() {
        items.push(item);
    }
}

/// Standard base64 with padding, as Go's JSON encodes `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> shift & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// `meta.v1.Time` (seconds, nanos) as RFC 3339 in UTC; `None` for the zero time.
fn time(buf: &[u8], path: &str) -> Result<Option<String>, Refusal> {
    let mut seconds = 0i64;
    for (n, w) in fields(buf)? {
        match (n, w) {
            (1, Wire::Varint(s)) => seconds = s as i64,
            (2, Wire::Varint(_)) => {} // JSON times carry whole seconds
            _ => return Err(format!("{path}: not a Time")),
        }
    }
    if seconds == 0 {
        return Ok(None);
    }
    let t =
        jiff::Timestamp::from_second(seconds).map_err(|_| format!("{path}: time out of range"))?;
    Ok(Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(num: u32, wire: u8) -> Vec<u8> {
        enc_varint(u64::from(num) << 3 | u64::from(wire))
    }

    fn enc_varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn len(num: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = key(num, 2);
        out.extend(enc_varint(bytes.len() as u64));
        out.extend(bytes);
        out
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [len(1, b"v1"), len(2, kind.as_bytes())].concat();
        [
            b"k8s\0".to_vec(),
            len(1, &type_meta),
            len(2, raw),
            len(3, b""),
            len(4, b""),
        ]
        .concat()
    }

    /// ObjectMeta as Go's generated marshaller writes it: every string, empty or not, and a
    /// zero creationTimestamp.
    fn meta(name: &str, labels: &[(&str, &str)]) -> Vec<u8> {
        let mut m = [
            len(1, name.as_bytes()),
            len(2, b""),
            len(3, b""),
            len(4, b""),
            len(5, b""),
            len(6, b""),
            key(7, 0),
            vec![0],
            len(8, &[]),
        ]
        .concat();
        for (k, v) in labels {
            m.extend(len(
                11,
                &[len(1, k.as_bytes()), len(2, v.as_bytes())].concat(),
            ));
        }
        m
    }

    #[test]
    fn a_namespace_from_kubectl_create() {
        let raw = [
            len(1, &meta("team-a", &[("lustre", "enabled")])),
            len(2, &[]),
            len(3, &len(1, b"")),
        ]
        .concat();
        assert_eq!(
            decode(&envelope("Namespace", &raw)).expect("decoded"),
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team-a", "labels": {"lustre": "enabled"}}})
        );
    }

    #[test]
    fn a_config_map_and_a_secret_keep_their_data() {
        let raw = [
            len(1, &meta("settings", &[])),
            len(2, &[len(1, b"mode"), len(2, b"fast")].concat()),
            len(3, &[len(1, b"blob"), len(2, &[0, 255])].concat()),
        ]
        .concat();
        let cm = decode(&envelope("ConfigMap", &raw)).expect("decoded");
        assert_eq!(cm["data"], json!({"mode": "fast"}));
        assert_eq!(cm["binaryData"], json!({"blob": "AP8="}));
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"a"), "YQ==");
        let raw = [
            len(1, &meta("token", &[])),
            len(2, &[len(1, b"key"), len(2, b"s3cr3t")].concat()),
            len(3, b"Opaque"),
        ]
        .concat();
        let secret = decode(&envelope("Secret", &raw)).expect("decoded");
        assert_eq!(secret["data"], json!({"key": "czNjcjN0"}));
        assert_eq!(secret["type"], "Opaque");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused_by_name() {
        let raw = [len(1, &meta("x", &[])), len(9, b"?")].concat();
        let err = decode(&envelope("ConfigMap", &raw)).expect_err("refused");
        assert!(err.contains("field 9 of ConfigMap"), "{err}");
        let err = decode(&envelope("Deployment", &[])).expect_err("refused");
        assert!(err.contains("not v1 Deployment"), "{err}");
        assert!(decode(b"{}").is_err());
    }
}
