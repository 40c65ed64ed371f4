//! The bridge's identity inside a PHP session, and PHP-side logins mapped
//! to it.

use crate::{Array, Error, PhpSession, Value};

/// Default session key of the bridge's identity: `$_SESSION['bridge']`.
pub const DEFAULT_IDENTITY_KEY: &str = "bridge";

/// Who the user is, as the bridge tells PHP pages.
///
/// Written as a PHP array under one session key:
///
/// ```php
/// $_SESSION['bridge'] = [
///     'sub' => 'b3f1…',            // string
///     'username' => 'alice',       // string or null
///     'groups' => ['admin'],       // list of strings
///     'auth_time' => 1767225600,   // Unix seconds, or null
///     'iss' => 'https://…',        // who authenticated the user
/// ];
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeIdentity {
    /// Stable user id.
    pub sub: String,
    /// Login name, when known.
    pub username: Option<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// When the user authenticated (Unix seconds), when known.
    pub auth_time: Option<i64>,
    /// The issuer that authenticated the user.
    pub iss: String,
}

impl BridgeIdentity {
    /// The PHP array the identity is written as.
    pub fn to_value(&self) -> Value {
        let mut a = Array::new();
        a.insert("sub", self.sub.as_str());
        a.insert("username", self.username.as_deref());
        a.insert(
            "groups",
            Array::list(self.groups.iter().map(String::as_str)),
        );
        a.insert("auth_time", self.auth_time);
        a.insert("iss", self.iss.as_str());
        Value::Array(a)
    }

    /// Read an identity written by [`to_value`](Self::to_value) (extra keys
    /// are ignored); `key` names the session key in errors.
    pub fn from_value(value: &Value, key: &str) -> Result<Self, Error> {
        let bad = |field: &str, problem| Error::Identity {
            key: format!("{key}.{field}"),
            problem,
        };
        let a = value.as_array().ok_or(Error::Identity {
            key: key.to_owned(),
            problem: "not an array",
        })?;
        let text = |field: &str| -> Result<Option<String>, Error> {
            match a.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => text_of(v)
                    .map(Some)
                    .ok_or_else(|| bad(field, "not a UTF-8 string")),
            }
        };
        let sub = text("sub")?.ok_or_else(|| bad("sub", "missing"))?;
        let iss = text("iss")?.ok_or_else(|| bad("iss", "missing"))?;
        let groups = match a.get("groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => groups_of(v).ok_or_else(|| bad("groups", "not a list of strings"))?,
        };
        let auth_time = match a.get("auth_time") {
            None | Some(Value::Null) => None,
            Some(Value::Int(n)) => Some(*n),
            Some(_) => return Err(bad("auth_time", "not an integer")),
        };
        Ok(Self {
            sub,
            username: text("username")?,
            groups,
            auth_time,
            iss,
        })
    }
}

/// How a login done by the PHP app reads in its session, so the bridge can
/// accept it.
///
/// The defaults read `$_SESSION['user_id']` as the user's id and nothing
/// else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginMapping {
    /// Key of the user id (string or integer). Absent, `null`, `false` or
    /// `''` means nobody is logged in.
    pub sub_key: String,
    /// Key of the login name (string or integer), if the app keeps one.
    pub username_key: Option<String>,
    /// Key of the groups (a list of strings or integers, or one string), if
    /// the app keeps them.
    pub groups_key: Option<String>,
    /// Key of the login time (Unix seconds), if the app keeps it.
    pub auth_time_key: Option<String>,
    /// Issuer recorded for logins accepted this way.
    pub issuer: String,
}

impl Default for LoginMapping {
    fn default() -> Self {
        Self {
            sub_key: "user_id".to_owned(),
            username_key: None,
            groups_key: None,
            auth_time_key: None,
            issuer: "php".to_owned(),
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(_) => v.as_str().map(str::to_owned),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn groups_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(|(_, g)| text_of(g)).collect(),
        Value::Str(_) => text_of(v).map(|g| vec![g]),
        _ => None,
    }
}

impl PhpSession {
    /// The identity the bridge wrote under `key`, if any.
    pub fn get_bridge_identity(&self, key: &str) -> Result<Option<BridgeIdentity>, Error> {
        self.get(key)
            .map(|v| BridgeIdentity::from_value(v, key))
            .transpose()
    }

    /// Write `identity` under `key` (in place if the key exists, else
    /// appended); every other key is left as it is.
    pub fn set_bridge_identity(&mut self, key: &str, identity: &BridgeIdentity) {
        self.insert(key, identity.to_value());
    }

    /// The login the PHP app recorded, read through `mapping`; `None` when
    /// nobody is logged in.
    pub fn identity_from_mapping(
        &self,
        mapping: &LoginMapping,
    ) -> Result<Option<BridgeIdentity>, Error> {
        let bad = |key: &str, problem| Error::Identity {
            key: key.to_owned(),
            problem,
        };
        let sub = match self.get(mapping.sub_key.as_str()) {
            None | Some(Value::Null | Value::Bool(false)) => return Ok(None),
            Some(v) => {
                text_of(v).ok_or_else(|| bad(&mapping.sub_key, "not a string or integer"))?
            }
        };
        if sub.is_empty() {
            return Ok(None);
        }
        fn field<'a>(s: &'a PhpSession, key: &'a Option<String>) -> Option<(&'a str, &'a Value)> {
            let k = key.as_deref()?;
            s.get(k).map(|v| (k, v))
        }
        let username = match field(self, &mapping.username_key) {
            None | Some((_, Value::Null)) => None,
            Some((k, v)) => Some(text_of(v).ok_or_else(|| bad(k, "not a string or integer"))?),
        };
        let groups = match field(self, &mapping.groups_key) {
            None | Some((_, Value::Null)) => Vec::new(),
            Some((k, v)) => groups_of(v).ok_or_else(|| bad(k, "not a list of strings"))?,
        };
        let auth_time = match field(self, &mapping.auth_time_key) {
            None | Some((_, Value::Null)) => None,
            Some((_, Value::Int(n))) => Some(*n),
            Some((k, _)) => return Err(bad(k, "not an integer")),
        };
        Ok(Some(BridgeIdentity {
            sub,
            username,
            groups,
            auth_time,
            iss: mapping.issuer.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, Limits};

    fn alice() -> BridgeIdentity {
        BridgeIdentity {
            sub: "u-1".into(),
            username: Some("alice".into()),
            groups: vec!["admin".into(), "users".into()],
            auth_time: Some(1_767_225_600),
            iss: "https://idp.example".into(),
        }
    }

    #[test]
    fn identity_is_a_php_array_and_reads_back() {
        let mut s = PhpSession::new(Format::Php);
        s.set_bridge_identity("bridge", &alice());
        let bytes = s.encode().unwrap();
        assert_eq!(
            bytes,
            &br#"bridge|a:5:{s:3:"sub";s:3:"u-1";s:8:"username";s:5:"alice";s:6:"groups";a:2:{i:0;s:5:"admin";i:1;s:5:"users";}s:9:"auth_time";i:1767225600;s:3:"iss";s:19:"https://idp.example";}"#[..]
        );
        let back = PhpSession::decode(Format::Php, &bytes, &Limits::default()).unwrap();
        assert_eq!(back.get_bridge_identity("bridge").unwrap(), Some(alice()));
        assert_eq!(back.get_bridge_identity("other").unwrap(), None);
    }

    #[test]
    fn replacing_the_identity_keeps_other_keys_and_their_bytes() {
        let input = br#"a|i:1;bridge|a:1:{s:3:"sub";s:1:"x";}z|O:8:"stdClass":0:{}"#;
        let mut s = PhpSession::decode(Format::Php, input, &Limits::default()).unwrap();
        assert!(s.get_bridge_identity("bridge").is_err(), "no iss");
        s.set_bridge_identity("bridge", &alice());
        let out = s.encode().unwrap();
        assert!(out.starts_with(br#"a|i:1;bridge|a:5:{"#));
        assert!(out.ends_with(br#"z|O:8:"stdClass":0:{}"#));
    }

    #[test]
    fn mapping_reads_a_php_login() {
        let input =
            br#"user_id|i:42;name|s:5:"alice";roles|a:2:{i:0;s:5:"staff";i:1;i:7;}at|i:100;"#;
        let s = PhpSession::decode(Format::Php, input, &Limits::default()).unwrap();
        let mapping = LoginMapping {
            username_key: Some("name".into()),
            groups_key: Some("roles".into()),
            auth_time_key: Some("at".into()),
            ..LoginMapping::default()
        };
        let id = s.identity_from_mapping(&mapping).unwrap().unwrap();
        assert_eq!(id.sub, "42");
        assert_eq!(id.username.as_deref(), Some("alice"));
        assert_eq!(id.groups, ["staff", "7"]);
        assert_eq!(id.auth_time, Some(100));
        assert_eq!(id.iss, "php");
    }

    #[test]
    fn mapping_sees_no_login_in_empty_or_false_ids() {
        for input in [
            &b""[..],
            b"user_id|N;",
            b"user_id|b:0;",
            b"user_id|s:0:\"\";",
        ] {
            let s = PhpSession::decode(Format::Php, input, &Limits::default()).unwrap();
            assert_eq!(
                s.identity_from_mapping(&LoginMapping::default()).unwrap(),
                None
            );
        }
        let s = PhpSession::decode(Format::Php, b"user_id|d:1.5;", &Limits::default()).unwrap();
        assert!(s.identity_from_mapping(&LoginMapping::default()).is_err());
    }
}
