//! JSON-RPC 2.0 (<https://www.jsonrpc.org/specification>) as the control socket speaks it:
//! one request — an object, or a batch array of them — per line, one response line per
//! line that has one (notifications, requests without `id`, get none). Parameters by
//! position (an array) or by name (an object), like Kamailio's `jsonrpcs`.

use serde_json::{Map, Value, json};

/// Invalid JSON (§5.1).
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid request object (§5.1).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method (§5.1).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (§5.1).
pub const INVALID_PARAMS: i64 = -32602;
/// The call failed (implementation-defined server error range, §5.1).
pub const FAILED: i64 = -32000;
/// What the call names does not exist.
pub const NOT_FOUND: i64 = -32001;

/// Most requests in one batch.
pub const MAX_BATCH: usize = 64;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The code (the constants of this module).
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// Invalid parameters.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    fn to_value(&self) -> Value {
        json!({ "code": self.code, "message": self.message })
    }
}

/// A request's parameters, looked up by name or position.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    value: Option<&'a Value>,
}

impl<'a> Params<'a> {
    /// Parameters from a request's `params` member.
    pub fn new(value: Option<&'a Value>) -> Self {
        Params { value }
    }

    /// Refuses names or positions beyond `names` (the method's parameters, in order).
    pub fn expect(&self, names: &[&str]) -> Result<(), RpcError> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(a)) if a.len() <= names.len() => Ok(()),
            Some(Value::Array(a)) => Err(RpcError::params(format!(
                "{} parameters given, at most {} ({})",
                a.len(),
                names.len(),
                names.join(", ")
            ))),
            Some(Value::Object(o)) => match o.keys().find(|k| !names.contains(&k.as_str())) {
                Some(k) => Err(RpcError::params(format!(
                    "unknown parameter `{k}` (expected: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))),
                None => Ok(()),
            },
            Some(_) => Err(RpcError::params("params must be an array or an object")),
        }
    }

    /// Parameter `name`, at position `i` when given by position; `null` counts as absent.
    pub fn get(&self, i: usize, name: &str) -> Option<&'a Value> {
        let v = match self.value? {
            Value::Array(a) => a.get(i),
            Value::Object(o) => o.get(name),
            _ => None,
        };
        v.filter(|v| !v.is_null())
    }

    /// An optional string parameter.
    pub fn opt_str(&self, i: usize, name: &str) -> Result<Option<&'a str>, RpcError> {
        match self.get(i, name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RpcError::params(format!("`{name}` must be a string"))),
        }
    }

    /// A required string parameter.
    pub fn str(&self, i: usize, name: &str) -> Result<&'a str, RpcError> {
        self.opt_str(i, name)?
            .ok_or_else(|| RpcError::params(format!("`{name}` is missing")))
    }

    /// An optional non-negative integer parameter (a number, or a string of digits).
    pub fn opt_u64(&self, i: usize, name: &str) -> Result<Option<u64>, RpcError> {
        match self.get(i, name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| RpcError::params(format!("`{name}` must be a whole number ≥ 0"))),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| RpcError::params(format!("`{name}`: `{s}` is not a whole number"))),
            Some(_) => Err(RpcError::params(format!("`{name}` must be a number"))),
        }
    }

    /// A parameter parsed from its string form.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        i: usize,
        name: &str,
        what: &str,
    ) -> Result<T, RpcError> {
        let s = self.str(i, name)?;
        s.parse()
            .map_err(|_| RpcError::params(format!("`{name}`: `{s}` is not {what}")))
    }
}

/// What serves the calls: `method` with its `params`.
pub type Call<'a> = dyn Fn(&str, Params<'_>) -> Result<Value, RpcError> + 'a;

fn response(id: Value, outcome: Result<Value, RpcError>) -> Value {
    let mut m = Map::new();
    m.insert("jsonrpc".into(), "2.0".into());
    match outcome {
        Ok(v) => m.insert("result".into(), v),
        Err(e) => m.insert("error".into(), e.to_value()),
    };
    m.insert("id".into(), id);
    Value::Object(m)
}

/// One request object: its response, or `None` for a notification.
fn one(req: &Value, call: &Call<'_>) -> Option<Value> {
    let Value::Object(o) = req else {
        return Some(response(
            Value::Null,
            Err(RpcError::new(INVALID_REQUEST, "a request is a JSON object")),
        ));
    };
    let id = o.get("id").cloned();
    let id_ok = matches!(
        id,
        None | Some(Value::Null | Value::String(_) | Value::Number(_))
    );
    let invalid = |why: &str| {
        Some(response(
            if id_ok {
                id.clone().unwrap_or(Value::Null)
            } else {
                Value::Null
            },
            Err(RpcError::new(INVALID_REQUEST, why)),
        ))
    };
    if !id_ok {
        return invalid("`id` must be a string, a number or null");
    }
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("`jsonrpc` must be \"2.0\"");
    }
    let Some(method) = o.get("method").and_then(Value::as_str) else {
        return invalid("`method` must be a string");
    };
    let params = o.get("params");
    if !matches!(params, None | Some(Value::Array(_) | Value::Object(_))) {
        return invalid("`params` must be an array or an object");
    }
    let outcome = call(method, Params::new(params));
    id.map(|id| response(id, outcome))
}

/// Serves one line: the response line to write back (without its newline), or `None` when
/// there is nothing to answer (notifications only, or a blank line).
pub fn handle_line(line: &[u8], call: &Call<'_>) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let answer = match serde_json::from_str::<Value>(text) {
        Err(e) => response(
            Value::Null,
            Err(RpcError::new(PARSE_ERROR, format!("not JSON: {e}"))),
        ),
        Ok(Value::Array(batch)) => {
            if batch.is_empty() {
                response(
                    Value::Null,
                    Err(RpcError::new(INVALID_REQUEST, "empty batch")),
                )
            } else if batch.len() > MAX_BATCH {
                response(
                    Value::Null,
                    Err(RpcError::new(
                        INVALID_REQUEST,
                        format!("batch of {} requests: at most {MAX_BATCH}", batch.len()),
                    )),
                )
            } else {
                let out: Vec<Value> = batch.iter().filter_map(|r| one(r, call)).collect();
                if out.is_empty() {
                    return None;
                }
                Value::Array(out)
            }
        }
        Ok(req) => one(&req, call)?,
    };
    Some(answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo(method: &str, p: Params<'_>) -> Result<Value, RpcError> {
        match method {
            "echo" => {
                p.expect(&["text", "n"])?;
                Ok(json!({ "text": p.str(0, "text")?, "n": p.opt_u64(1, "n")? }))
            }
            _ => Err(RpcError::new(METHOD_NOT_FOUND, "no such method")),
        }
    }

    fn answer(line: &str) -> Option<Value> {
        handle_line(line.as_bytes(), &echo).map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn params_by_position_and_by_name() {
        // Specification §4.2: params by-position (array) or by-name (object).
        let r = answer(r#"{"jsonrpc":"2.0","method":"echo","params":["a",2],"id":1}"#).unwrap();
        assert_eq!(
            r,
            json!({"jsonrpc":"2.0","result":{"text":"a","n":2},"id":1})
        );
        let r =
            answer(r#"{"jsonrpc":"2.0","method":"echo","params":{"text":"b"},"id":"x"}"#).unwrap();
        assert_eq!(r["result"], json!({"text":"b","n":null}));
        assert_eq!(r["id"], "x");
        let r = answer(r#"{"jsonrpc":"2.0","method":"echo","params":{"txt":"b"},"id":2}"#).unwrap();
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        let r = answer(r#"{"jsonrpc":"2.0","method":"echo","params":["a",-1],"id":2}"#).unwrap();
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
    }

    #[test]
    fn errors_of_the_specification() {
        // §7 examples: unknown method, invalid JSON, invalid request, empty batch.
        let r = answer(r#"{"jsonrpc":"2.0","method":"foobar","id":"1"}"#).unwrap();
        assert_eq!(r["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(r["id"], "1");
        let r = answer(r#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#).unwrap();
        assert_eq!(r["error"]["code"], PARSE_ERROR);
        assert_eq!(r["id"], Value::Null);
        let r = answer(r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#).unwrap();
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
        let r = answer("[]").unwrap();
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
        let r = answer(r#"{"jsonrpc":"1.0","method":"echo","id":3}"#).unwrap();
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
        assert_eq!(r["id"], 3);
        let r = answer(r#"{"jsonrpc":"2.0","method":"echo","id":[1]}"#).unwrap();
        assert_eq!(r["id"], Value::Null);
    }

    #[test]
    fn batches_and_notifications() {
        // §6: a batch answers an array without the notifications' entries; notifications
        // alone get nothing back.
        let r = answer(
            r#"[{"jsonrpc":"2.0","method":"echo","params":["a"],"id":1},
                {"jsonrpc":"2.0","method":"echo","params":["n"]},
                1,
                {"jsonrpc":"2.0","method":"nope","id":2}]"#,
        )
        .unwrap();
        let a = r.as_array().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0]["result"]["text"], "a");
        assert_eq!(a[1]["error"]["code"], INVALID_REQUEST);
        assert_eq!(a[2]["error"]["code"], METHOD_NOT_FOUND);
        assert!(answer(r#"{"jsonrpc":"2.0","method":"echo","params":["n"]}"#).is_none());
        assert!(answer("   ").is_none());
        let big = format!(
            "[{}]",
            vec![r#"{"jsonrpc":"2.0","method":"echo","params":["a"],"id":1}"#; MAX_BATCH + 1]
                .join(",")
        );
        assert_eq!(answer(&big).unwrap()["error"]["code"], INVALID_REQUEST);
    }
}
