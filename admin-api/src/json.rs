//! A minimal JSON writer: admind's answers are small documents built once, and serde's
//! serialiser would cost the device binary more than this.

use std::fmt::Write;

/// A value that writes itself as JSON.
pub trait Json {
    fn write_json(&self, out: &mut String);

    fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }
}

/// Writes `{` fields `}`: `object(out, |o| { o.field("a", &1u64); })`.
pub fn object(out: &mut String, fields: impl FnOnce(&mut Object<'_>)) {
    out.push('{');
    fields(&mut Object { out, first: true });
    out.push('}');
}

pub struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl Object<'_> {
    // `dyn`: one copy of this code for every type of value (admind's size budget).
    pub fn field(&mut self, key: &str, value: &dyn Json) -> &mut Self {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        key.write_json(self.out);
        self.out.push(':');
        value.write_json(self.out);
        self
    }
}

impl Json for str {
    fn write_json(&self, out: &mut String) {
        out.push('"');
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

impl Json for String {
    fn write_json(&self, out: &mut String) {
        self.as_str().write_json(out)
    }
}

impl Json for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" })
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Json for $t {
            fn write_json(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
numbers!(u8, u32, u64, i32, i64);

impl<T: Json> Json for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(v) => v.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: Json> Json for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.write_json(out);
        }
        out.push(']');
    }
}

impl<T: Json> Json for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out)
    }
}

/// The text of a JSON string: `"` and `\` escaped, control characters as `\uXXXX`.
pub fn string(s: &str) -> String {
    s.to_json()
}

/// Declares document structs: each derives serde's `Deserialize` and writes itself as a
/// JSON object of its fields.
macro_rules! documents {
    ($($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $type:ty,)* })*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
        pub struct $name { $($(#[$field_meta])* pub $field: $type,)* }

        impl $crate::json::Json for $name {
            fn write_json(&self, out: &mut String) {
                $crate::json::object(out, |o| {
                    $(o.field(stringify!($field), &self.$field);)*
                })
            }
        }
    )*};
}
pub(crate) use documents;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_a_json_parser_reads_back() {
        let mut out = String::new();
        object(&mut out, |o| {
            o.field("s", &String::from("a\"b\\\n\x01é"))
                .field("n", &u64::MAX)
                .field("i", &-3i64)
                .field("none", &None::<u8>)
                .field("list", &vec![true, false]);
        });
        assert_eq!(string("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\u0001\"");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["s"], "a\"b\\\n\x01é");
        assert_eq!(v["n"], u64::MAX);
        assert_eq!(v["i"], -3);
        assert!(v["none"].is_null());
        assert_eq!(v["list"], serde_json::json!([true, false]));
    }
}
