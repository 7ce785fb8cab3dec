//! Decoding of `application/vnd.kubernetes.protobuf` request bodies for the few kinds kubectl's
//! typed clients send that way (`kubectl create namespace|secret|configmap|serviceaccount|role|
//! rolebinding|clusterrole|clusterrolebinding`). kubectl has no JSON fallback for these, so the
//! fake reads them: the `k8s\0` envelope (`runtime.Unknown`), then the object by a field table
//! taken from the kinds' `generated.proto`. Responses are always JSON (kubectl accepts JSON).
//! Other kinds answer 415.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// bytes, rendered base64 as JSON does.
    Bytes,
    Int,
    Bool,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn r(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(5, "apiVersion", Ty::Str),
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    r(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    r(14, "finalizers", Ty::Str),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const NAMESPACE_SPEC: &[Field] = &[r(1, "finalizers", Ty::Str)];
const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
];
const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];
const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    r(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    r(3, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const POLICY_RULE: &[Field] = &[
    r(1, "verbs", Ty::Str),
    r(2, "apiGroups", Ty::Str),
    r(3, "resources", Ty::Str),
    r(4, "resourceNames", Ty::Str),
    r(5, "nonResourceURLs", Ty::Str),
];
const ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    r(2, "rules", Ty::Msg(POLICY_RULE)),
];
const SUBJECT: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];
const ROLE_REF: &[Field] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];
const ROLE_BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    r(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const SSAR_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SSAR_SPEC)),
];

fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn eof(&self) -> bool {
        self.i >= self.b.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.i).ok_or("truncated varint")?;
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()? as usize;
        let end = self
            .i
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or("truncated field")?;
        let s = &self.b[self.i..end];
        self.i = end;
        Ok(s)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => {
                self.i += 8;
                Ok(())
            }
            2 => self.bytes().map(|_| ()),
            5 => {
                self.i += 4;
                Ok(())
            }
            w => Err(format!("unsupported wire type {w}")),
        }
    }
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in string field".to_string())
}

/// A map entry message: key = 1, value = 2.
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut rd = Reader { b, i: 0 };
    let (mut k, mut v) = (String::new(), Value::from(""));
    while !rd.eof() {
        let tag = rd.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => k = text(rd.bytes()?)?,
            (2, 2) => {
                let raw = rd.bytes()?;
                v = if bytes_value {
                    Value::from(B64.encode(raw))
                } else {
                    Value::from(text(raw)?)
                };
            }
            (_, w) => rd.skip(w)?,
        }
    }
    Ok((k, v))
}

fn message(b: &[u8], fields: &[Field]) -> Result<Value, String> {
    let mut rd = Reader { b, i: 0 };
    let mut out = Map::new();
    while !rd.eof() {
        let tag = rd.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            rd.skip(wire)?;
            continue;
        };
        let value = match field.ty {
            Ty::Str => Value::from(text(rd.bytes()?)?),
            Ty::Bytes => Value::from(B64.encode(rd.bytes()?)),
            Ty::Int => Value::from(rd.varint()? as i64),
            Ty::Bool => Value::from(rd.varint()? != 0),
            Ty::Msg(sub) => message(rd.bytes()?, sub)?,
            Ty::MapStr | Ty::MapBytes => {
                let (k, v) = map_entry(rd.bytes()?, matches!(field.ty, Ty::MapBytes))?;
                out.entry(field.name).or_insert_with(|| json!({}))[k] = v;
                continue;
            }
        };
        if field.repeated {
            match out.entry(field.name).or_insert_with(|| json!([])) {
                Value::Array(a) => a.push(value),
                other => *other = json!([value]),
            }
        } else if value != json!("") && value != json!(false) {
            // Go's protobuf encoding writes empty optional strings; JSON would omit them.
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-enveloped protobuf object into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing k8s protobuf envelope")?;
    let mut rd = Reader { b: rest, i: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !rd.eof() {
        let tag = rd.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => {
                let tm = message(
                    rd.bytes()?,
                    &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)],
                )?;
                api_version = tm["apiVersion"].as_str().unwrap_or_default().to_string();
                kind = tm["kind"].as_str().unwrap_or_default().to_string();
            }
            (2, 2) => raw = rd.bytes()?,
            (_, w) => rd.skip(w)?,
        }
    }
    let fields = schema(&api_version, &kind).ok_or_else(|| {
        format!("protobuf bodies are not supported for {api_version}/{kind}; send JSON")
    })?;
    let mut obj = message(raw, fields)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}
