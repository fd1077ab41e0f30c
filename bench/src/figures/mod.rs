//! The figures of the report. Each returns a table: one row per peer, a column per number.

pub mod expose;
pub mod http;
pub mod proxy;
pub mod replace;
pub mod startup;
pub mod tcp;
pub mod udp;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct Figure {
    pub id: u8,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub peer: String,
    /// Numbers, or a text where a number could not be had (and why).
    pub values: Vec<Value>,
}

impl Figure {
    pub fn new(id: u8, title: &str, columns: &[&str]) -> Figure {
        Figure {
            id,
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, peer: &str, values: Vec<Value>) {
        self.rows.push(Row {
            peer: peer.to_owned(),
            values,
        });
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### {}. {}\n\n| peer | {} |\n|---|",
            self.id,
            self.title,
            self.columns.join(" | ")
        );
        out.push_str(&"---:|".repeat(self.columns.len()));
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.values.iter().map(cell).collect();
            out.push_str(&format!("| {} | {} |\n", row.peer, cells.join(" | ")));
        }
        for note in &self.notes {
            out.push_str(&format!("\n{note}\n"));
        }
        out
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            Some(f) if f.abs() >= 100.0 => format!("{f:.0}"),
            Some(f) if f.abs() >= 10.0 => format!("{f:.1}"),
            Some(f) => format!("{f:.2}"),
            None => n.to_string(),
        },
        // A failure's text, on one line and short enough for a table cell.
        Value::String(s) => {
            let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
            match line.char_indices().nth(100) {
                Some((end, _)) => format!("{}…", &line[..end]),
                None => line,
            }
        }
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

/// A number rounded for the JSON file (the table rounds again for people).
pub fn num(x: f64) -> Value {
    serde_json::Number::from_f64((x * 1000.0).round() / 1000.0)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}
