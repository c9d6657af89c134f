//! Compiling a schema: every keyword checked for its type, unknown keywords refused by name,
//! and a schema that contradicts itself refused at the keyword that makes it so.

use super::{
    compare, escape_segment, kind_name, same, CompiledSchema, Node, SchemaError, Types, ARRAY,
    INTEGER, MAX_DEPTH, NUMBER, OBJECT, STRING, TYPE_NAMES,
};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// Compiles a schema written in the supported subset (see the module documentation).
pub fn compile(schema: &Value) -> Result<CompiledSchema, SchemaError> {
    let mut compiler = Compiler {
        path: String::new(),
    };
    Ok(CompiledSchema {
        root: compiler.node(schema, 0)?,
    })
}

struct Compiler {
    path: String,
}

impl Compiler {
    fn err(&self, keyword: &str, message: impl Into<String>) -> SchemaError {
        let path = if keyword.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.path, escape_segment(keyword))
        };
        SchemaError {
            path,
            message: message.into(),
        }
    }

    fn err_item(&self, keyword: &str, index: usize, message: impl Into<String>) -> SchemaError {
        SchemaError {
            path: format!("{}/{keyword}/{index}", self.path),
            message: message.into(),
        }
    }

    /// Compiles `schema` found under `segment` of the current path.
    fn child(&mut self, segment: &str, schema: &Value, depth: usize) -> Result<Node, SchemaError> {
        let len = self.path.len();
        self.path.push('/');
        self.path.push_str(&escape_segment(segment));
        let node = self.node(schema, depth);
        self.path.truncate(len);
        node
    }

    fn node(&mut self, schema: &Value, depth: usize) -> Result<Node, SchemaError> {
        let Value::Object(map) = schema else {
            return Err(self.err(
                "",
                "a schema must be an object such as {\"type\": \"string\"}",
            ));
        };
        if depth > MAX_DEPTH {
            return Err(self.err(
                "",
                format!("schemas may nest at most {MAX_DEPTH} levels deep"),
            ));
        }
        let mut node = Node::default();
        for (keyword, value) in map {
            self.keyword(&mut node, keyword, value, depth)?;
        }
        self.check_consistent(&node, map)?;
        Ok(node)
    }

    fn length(&self, keyword: &str, value: &Value) -> Result<u64, SchemaError> {
        value
            .as_u64()
            .ok_or_else(|| self.err(keyword, "must be a whole number, 0 or more"))
    }

    fn number(&self, keyword: &str, value: &Value) -> Result<Number, SchemaError> {
        match value {
            Value::Number(n) => Ok(n.clone()),
            _ => Err(self.err(
                keyword,
                format!("must be a number, not {}", kind_name(value)),
            )),
        }
    }

    fn keyword(
        &mut self,
        node: &mut Node,
        keyword: &str,
        value: &Value,
        depth: usize,
    ) -> Result<(), SchemaError> {
        match keyword {
            "type" => node.types = Some(self.types(value)?),
            "enum" => {
                let Value::Array(values) = value else {
                    return Err(self.err(keyword, "must be a list of the allowed values"));
                };
                if values.is_empty() {
                    return Err(self.err(keyword, "an empty enum allows nothing"));
                }
                for (i, v) in values.iter().enumerate() {
                    if values[..i].iter().any(|w| same(v, w)) {
                        return Err(self.err_item("enum", i, "appears twice"));
                    }
                }
                node.enumeration = Some(values.clone());
            }
            "minimum" => node.minimum = Some(self.number(keyword, value)?),
            "maximum" => node.maximum = Some(self.number(keyword, value)?),
            "minLength" => node.min_length = Some(self.length(keyword, value)?),
            "maxLength" => node.max_length = Some(self.length(keyword, value)?),
            "properties" => {
                let Value::Object(props) = value else {
                    return Err(self.err(keyword, "must be an object of property schemas"));
                };
                let len = self.path.len();
                self.path.push_str("/properties");
                let compiled: Result<Vec<_>, _> = props
                    .iter()
                    .map(|(name, schema)| Ok((name.clone(), self.child(name, schema, depth + 1)?)))
                    .collect();
                self.path.truncate(len);
                node.properties = compiled?;
                node.properties.sort_by(|a, b| a.0.cmp(&b.0));
            }
            "required" => {
                let Value::Array(names) = value else {
                    return Err(self.err(keyword, "must be a list of property names"));
                };
                for (i, name) in names.iter().enumerate() {
                    let Value::String(name) = name else {
                        return Err(self.err_item("required", i, "must be a property name"));
                    };
                    if node.required.contains(name) {
                        return Err(self.err_item("required", i, "appears twice"));
                    }
                    node.required.push(name.clone());
                }
            }
            "additionalProperties" => match value {
                Value::Bool(b) => node.closed = !b,
                Value::Object(_) => {
                    return Err(self.err(
                        keyword,
                        "only true or false is supported; describe known properties under properties",
                    ))
                }
                _ => return Err(self.err(keyword, "must be true or false")),
            },
            "items" => match value {
                Value::Object(_) => node.items = Some(Box::new(self.child(keyword, value, depth + 1)?)),
                Value::Array(_) => {
                    return Err(self.err(
                        keyword,
                        "a list of item schemas is not supported; give one schema for every item",
                    ))
                }
                _ => return Err(self.err(keyword, "must be a schema for every item")),
            },
            "title" | "description" | "$comment" | "$schema" => {
                if !value.is_string() {
                    return Err(self.err(keyword, "must be a string"));
                }
            }
            _ => {
                return Err(self.err(
                    keyword,
                    format!(
                        "unknown or unsupported keyword {keyword:?}; supported: type, properties, required, additionalProperties, enum, minimum, maximum, minLength, maxLength, items, title, description"
                    ),
                ))
            }
        }
        Ok(())
    }

    fn types(&self, value: &Value) -> Result<Types, SchemaError> {
        let one = |v: &Value, at: Option<usize>| -> Result<u8, SchemaError> {
            let name = v.as_str().unwrap_or_default();
            TYPE_NAMES
                .iter()
                .position(|t| *t == name)
                .map(|i| 1 << i)
                .ok_or_else(|| {
                    let message = format!(
                        "{v} is not a type; use object, string, number, integer, boolean, array or null"
                    );
                    match at {
                        Some(i) => self.err_item("type", i, message),
                        None => self.err("type", message),
                    }
                })
        };
        match value {
            Value::Array(list) if !list.is_empty() => {
                let mut bits = 0;
                for (i, v) in list.iter().enumerate() {
                    let bit = one(v, Some(i))?;
                    if bits & bit != 0 {
                        return Err(self.err_item("type", i, "appears twice"));
                    }
                    bits |= bit;
                }
                Ok(Types(bits))
            }
            Value::Array(_) => Err(self.err("type", "an empty list of types allows nothing")),
            v => one(v, None).map(Types),
        }
    }

    /// Refuses a schema that contradicts itself, so could never accept what its author meant.
    fn check_consistent(&self, node: &Node, map: &Map<String, Value>) -> Result<(), SchemaError> {
        if let Some(types) = node.types {
            let kinds: [(&[&str], u8, &str); 4] = [
                (&["minimum", "maximum"], NUMBER | INTEGER, "numbers"),
                (&["minLength", "maxLength"], STRING, "strings"),
                (
                    &["properties", "required", "additionalProperties"],
                    OBJECT,
                    "objects",
                ),
                (&["items"], ARRAY, "arrays"),
            ];
            for (keywords, bits, what) in kinds {
                if types.0 & bits != 0 {
                    continue;
                }
                if let Some(k) = keywords.iter().find(|k| map.contains_key(**k)) {
                    return Err(self.err(
                        k,
                        format!(
                            "{k} applies to {what}, but type allows only {}",
                            types.names()
                        ),
                    ));
                }
            }
            if let Some(values) = &node.enumeration {
                if let Some(i) = values.iter().position(|v| !types.admits(v)) {
                    return Err(self.err_item(
                        "enum",
                        i,
                        format!(
                            "is {}, but type allows only {}",
                            kind_name(&values[i]),
                            types.names()
                        ),
                    ));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (&node.minimum, &node.maximum) {
            if compare(lo, hi) == Ordering::Greater {
                return Err(self.err(
                    "minimum",
                    format!("{lo} is above maximum {hi}, so no number fits"),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (node.min_length, node.max_length) {
            if lo > hi {
                return Err(self.err(
                    "minLength",
                    format!("{lo} is above maxLength {hi}, so no string fits"),
                ));
            }
        }
        if node.closed {
            if let Some(i) = node
                .required
                .iter()
                .position(|r| node.property(r).is_none())
            {
                return Err(self.err_item("required", i,
                    format!(
                        "{:?} is required, but additionalProperties is false and properties does not list it",
                        node.required[i]
                    ),
                ));
            }
        }
        Ok(())
    }
}
