//! The database demo server: generated tables, a tiny SQL `SELECT` subset, and the
//! `sql_select`, `list_tables` and `insert_row` tools.

use super::kind::DemoKind;
use super::server::{Backend, DemoServer, TEAMS};
use rmcp::{
    Json,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    schemars::JsonSchema,
    tool, tool_router,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The most rows one `sql_select` returns, whatever its LIMIT.
const MAX_SELECT_ROWS: usize = 1_000;
/// Rows per table beyond which `insert_row` refuses, to bound memory under load.
const MAX_TABLE_ROWS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Integer,
    Text,
    Boolean,
}

impl ColumnType {
    fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Text => "text",
            ColumnType::Boolean => "boolean",
        }
    }

    fn accepts(self, value: &serde_json::Value) -> bool {
        match self {
            ColumnType::Integer => value.as_i64().is_some(),
            ColumnType::Text => value.is_string(),
            ColumnType::Boolean => value.is_boolean(),
        }
    }

    fn hint(self) -> &'static str {
        match self {
            ColumnType::Integer => "a whole number",
            ColumnType::Text => "a 'quoted string'",
            ColumnType::Boolean => "true or false",
        }
    }
}

#[derive(Debug, Clone)]
struct Table {
    /// The first column is always the integer primary key `id`.
    columns: Vec<(&'static str, ColumnType)>,
    rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    fn column(&self, table: &str, name: &str) -> Result<(usize, ColumnType), String> {
        self.columns
            .iter()
            .position(|(column, _)| *column == name)
            .map(|index| (index, self.columns[index].1))
            .ok_or_else(|| {
                let known: Vec<&str> = self.columns.iter().map(|(column, _)| *column).collect();
                format!(
                    "unknown column '{name}' in table {table} (columns: {})",
                    known.join(", ")
                )
            })
    }
}

pub(super) struct DatabaseBackend {
    tables: Mutex<BTreeMap<&'static str, Table>>,
}

/// A token of the supported SQL subset.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Int(i64),
    Str(String),
    Comma,
    Star,
    Eq,
    /// `<`, `>`, `<=`, `>=`, `<>` or `!=`: lexed only to refuse them clearly.
    Comparison(String),
    Semicolon,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(word) => write!(f, "'{word}'"),
            Token::Int(number) => write!(f, "{number}"),
            Token::Str(text) => write!(f, "string '{text}'"),
            Token::Comma => f.write_str("','"),
            Token::Star => f.write_str("'*'"),
            Token::Eq => f.write_str("'='"),
            Token::Comparison(operator) => write!(f, "'{operator}'"),
            Token::Semicolon => f.write_str("';'"),
        }
    }
}

const SQL_SHAPE: &str = "SELECT cols FROM table [WHERE col = value] [LIMIT n]";
const SQL_KEYWORDS: [&str; 5] = ["select", "from", "where", "limit", "null"];

fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = sql.char_indices().peekable();
    while let Some(&(position, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ',' | '*' | '=' | ';' => {
                chars.next();
                tokens.push(match c {
                    ',' => Token::Comma,
                    '*' => Token::Star,
                    '=' => Token::Eq,
                    _ => Token::Semicolon,
                });
            }
            '<' | '>' | '!' => {
                chars.next();
                let mut operator = c.to_string();
                if let Some(&(_, next)) = chars.peek()
                    && (next == '=' || (c == '<' && next == '>'))
                {
                    operator.push(next);
                    chars.next();
                }
                tokens.push(Token::Comparison(operator));
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        // SQL escapes a quote inside a string by doubling it.
                        Some((_, '\'')) if chars.peek().is_some_and(|(_, next)| *next == '\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, other)) => text.push(other),
                        None => {
                            return Err(format!(
                                "unterminated string starting at position {position}"
                            ));
                        }
                    }
                }
                tokens.push(Token::Str(text));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut literal = String::new();
                while let Some(&(_, next)) = chars.peek() {
                    if next.is_ascii_digit() || (next == '-' && literal.is_empty()) {
                        literal.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let number = literal.parse::<i64>().map_err(|_| {
                    format!("'{literal}' at position {position} is not a whole number")
                })?;
                tokens.push(Token::Int(number));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&(_, next)) = chars.peek() {
                    if next.is_alphanumeric() || next == '_' {
                        word.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => {
                return Err(format!(
                    "unexpected character '{other}' at position {position}; only {SQL_SHAPE} \
                     is supported"
                ));
            }
        }
    }
    Ok(tokens)
}

/// A parsed `SELECT` of the supported subset.
#[derive(Debug, Clone, PartialEq)]
struct Select {
    /// `None` for `*`.
    columns: Option<Vec<String>>,
    table: String,
    filter: Option<(String, serde_json::Value)>,
    limit: Option<usize>,
}

struct SqlParser {
    tokens: Vec<Token>,
    position: usize,
}

impl SqlParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let matched =
            matches!(self.peek(), Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword));
        if matched {
            self.position += 1;
        }
        matched
    }

    fn expect_keyword(&mut self, keyword: &str, after: &str) -> Result<(), String> {
        if self.keyword(keyword) {
            return Ok(());
        }
        Err(match self.peek() {
            Some(token) => format!("expected {keyword} after {after}, found {token}"),
            None => format!("expected {keyword} after {after}, found the end of the statement"),
        })
    }

    fn identifier(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word))
                if !SQL_KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) =>
            {
                // SQL identifiers are case-insensitive; ours are all lower case.
                Ok(word.to_ascii_lowercase())
            }
            Some(token) => Err(format!("expected {what}, found {token}")),
            None => Err(format!("expected {what}, found the end of the statement")),
        }
    }

    fn literal(&mut self) -> Result<serde_json::Value, String> {
        match self.next() {
            Some(Token::Int(number)) => Ok(number.into()),
            Some(Token::Str(text)) => Ok(text.into()),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("true") => Ok(true.into()),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("false") => Ok(false.into()),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("null") => {
                Err("NULL is not supported: no column is nullable".to_owned())
            }
            Some(token) => Err(format!(
                "expected a value (number, 'string', true or false), found {token}"
            )),
            None => Err("expected a value after '=', found the end of the statement".to_owned()),
        }
    }

    fn parse(sql: &str) -> Result<Select, String> {
        let mut parser = SqlParser {
            tokens: tokenize(sql)?,
            position: 0,
        };
        if !parser.keyword("select") {
            return Err(match parser.peek() {
                Some(Token::Word(word)) => format!(
                    "only SELECT statements are supported, not {}; use insert_row to add rows",
                    word.to_ascii_uppercase()
                ),
                Some(token) => format!("expected SELECT, found {token}"),
                None => "the statement is empty".to_owned(),
            });
        }
        let columns = if parser.peek() == Some(&Token::Star) {
            parser.position += 1;
            None
        } else {
            let mut columns = vec![parser.identifier("a column name or *")?];
            while parser.peek() == Some(&Token::Comma) {
                parser.position += 1;
                columns.push(parser.identifier("a column name")?);
            }
            Some(columns)
        };
        parser.expect_keyword("FROM", "the column list")?;
        let table = parser.identifier("a table name")?;
        let filter = if parser.keyword("where") {
            let column = parser.identifier("a column name")?;
            match parser.next() {
                Some(Token::Eq) => {}
                Some(token) => {
                    return Err(format!(
                        "expected '=' after {column}, found {token}; only equality is supported"
                    ));
                }
                None => return Err(format!("expected '=' after {column}")),
            }
            Some((column, parser.literal()?))
        } else {
            None
        };
        let limit = if parser.keyword("limit") {
            match parser.next() {
                Some(Token::Int(number)) if number >= 0 => {
                    Some(usize::try_from(number).unwrap_or(usize::MAX))
                }
                Some(token) => {
                    return Err(format!(
                        "LIMIT needs a non-negative whole number, found {token}"
                    ));
                }
                None => return Err("LIMIT needs a number".to_owned()),
            }
        } else {
            None
        };
        if parser.peek() == Some(&Token::Semicolon) {
            parser.position += 1;
        }
        if let Some(token) = parser.peek() {
            return Err(format!("unexpected {token}; only {SQL_SHAPE} is supported"));
        }
        Ok(Select {
            columns,
            table,
            filter,
            limit,
        })
    }
}

impl DatabaseBackend {
    fn tables(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Table>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn table_names(tables: &BTreeMap<&'static str, Table>) -> String {
        tables.keys().copied().collect::<Vec<_>>().join(", ")
    }

    fn select(&self, sql: &str) -> Result<SelectOutput, String> {
        let select = SqlParser::parse(sql)?;
        let tables = self.tables();
        let table = tables.get(select.table.as_str()).ok_or_else(|| {
            format!(
                "unknown table '{}' (tables: {})",
                select.table,
                Self::table_names(&tables)
            )
        })?;
        let projection: Vec<usize> = match &select.columns {
            None => (0..table.columns.len()).collect(),
            Some(columns) => columns
                .iter()
                .map(|column| table.column(&select.table, column).map(|(index, _)| index))
                .collect::<Result<_, _>>()?,
        };
        let filter = match &select.filter {
            None => None,
            Some((column, value)) => {
                let (index, column_type) = table.column(&select.table, column)?;
                if !column_type.accepts(value) {
                    return Err(format!(
                        "column {}.{column} is {}; compare it with {}",
                        select.table,
                        column_type.name(),
                        column_type.hint()
                    ));
                }
                Some((index, value))
            }
        };
        let limit = select.limit.unwrap_or(MAX_SELECT_ROWS).min(MAX_SELECT_ROWS);
        let rows: Vec<Vec<serde_json::Value>> = table
            .rows
            .iter()
            .filter(|row| filter.is_none_or(|(index, value)| row[index] == *value))
            .take(limit)
            .map(|row| projection.iter().map(|index| row[*index].clone()).collect())
            .collect();
        Ok(SelectOutput {
            columns: projection
                .iter()
                .map(|index| table.columns[*index].0.to_owned())
                .collect(),
            row_count: rows.len(),
            rows,
        })
    }

    fn list_tables(&self) -> TablesOutput {
        let tables = self.tables();
        TablesOutput {
            tables: tables
                .iter()
                .map(|(name, table)| TableInfo {
                    name: (*name).to_owned(),
                    columns: table
                        .columns
                        .iter()
                        .map(|(column, column_type)| ColumnInfo {
                            name: (*column).to_owned(),
                            r#type: column_type.name().to_owned(),
                        })
                        .collect(),
                    rows: table.rows.len(),
                })
                .collect(),
        }
    }

    fn insert(
        &self,
        table_name: &str,
        mut values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<InsertOutput, String> {
        let mut tables = self.tables();
        let known = Self::table_names(&tables);
        let table = tables
            .get_mut(table_name.to_ascii_lowercase().as_str())
            .ok_or_else(|| format!("unknown table '{table_name}' (tables: {known})"))?;
        if table.rows.len() >= MAX_TABLE_ROWS {
            return Err(format!(
                "table {table_name} is full ({MAX_TABLE_ROWS} rows); this is a demo database"
            ));
        }
        if let Some(unknown) = values
            .keys()
            .find(|key| !table.columns.iter().any(|(column, _)| column == key))
        {
            return Err(format!(
                "unknown column '{unknown}' in table {table_name} (columns: {})",
                table
                    .columns
                    .iter()
                    .map(|(column, _)| *column)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let next_id = table
            .rows
            .iter()
            .filter_map(|row| row.first().and_then(serde_json::Value::as_i64))
            .max()
            .unwrap_or(0)
            + 1;
        let id = match values.remove("id") {
            None => next_id,
            Some(value) => {
                let id = value
                    .as_i64()
                    .ok_or_else(|| format!("id must be a whole number, got {value}"))?;
                if table
                    .rows
                    .iter()
                    .any(|row| row.first().and_then(serde_json::Value::as_i64) == Some(id))
                {
                    return Err(format!("a row with id {id} already exists in {table_name}"));
                }
                id
            }
        };
        let mut row = vec![serde_json::Value::from(id)];
        let mut missing = Vec::new();
        for (column, column_type) in table.columns.iter().skip(1) {
            match values.remove(*column) {
                Some(value) if column_type.accepts(&value) => row.push(value),
                Some(value) => {
                    return Err(format!(
                        "column {table_name}.{column} is {}, got {value}",
                        column_type.name()
                    ));
                }
                None => missing.push(*column),
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "missing values for {} in table {table_name}",
                missing.join(", ")
            ));
        }
        let inserted: serde_json::Map<String, serde_json::Value> = table
            .columns
            .iter()
            .map(|(column, _)| (*column).to_owned())
            .zip(row.iter().cloned())
            .collect();
        table.rows.push(row);
        Ok(InsertOutput {
            table: table_name.to_ascii_lowercase(),
            id,
            row: inserted,
        })
    }
}

const FIRST_NAMES: [&str; 12] = [
    "Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia",
    "Edsger", "Hedy",
];
const LAST_NAMES: [&str; 10] = [
    "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Ritchie", "Allen",
    "Thompson", "Perlman",
];
const PRODUCTS: [&str; 12] = [
    "Keyboard",
    "Monitor",
    "Dock",
    "Headset",
    "Webcam",
    "Mouse",
    "Laptop stand",
    "Cable kit",
    "Microphone",
    "Desk lamp",
    "Chair",
    "Notebook",
];
const ORDER_STATUSES: [&str; 4] = ["pending", "paid", "shipped", "refunded"];

impl Backend for DatabaseBackend {
    const KIND: DemoKind = DemoKind::Database;

    fn generate(rng: &mut fastrand::Rng) -> Self {
        use ColumnType::{Boolean, Integer, Text};
        let users = Table {
            columns: vec![
                ("id", Integer),
                ("name", Text),
                ("email", Text),
                ("team", Text),
                ("active", Boolean),
            ],
            rows: (1..=24_i64)
                .map(|id| {
                    let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
                    let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
                    vec![
                        id.into(),
                        format!("{first} {last}").into(),
                        format!(
                            "{}.{}{id}@example.com",
                            first.to_lowercase(),
                            last.to_lowercase()
                        )
                        .into(),
                        TEAMS[rng.usize(..TEAMS.len())].into(),
                        (rng.u8(..10) < 8).into(),
                    ]
                })
                .collect(),
        };
        let products = Table {
            columns: vec![
                ("id", Integer),
                ("sku", Text),
                ("name", Text),
                ("price_cents", Integer),
                ("stock", Integer),
            ],
            rows: PRODUCTS
                .iter()
                .zip(1_i64..)
                .map(|(name, id)| {
                    vec![
                        id.into(),
                        format!("SKU-{:04}", 1000 + id * 7).into(),
                        (*name).into(),
                        (rng.i64(5..300) * 100 - 1).into(),
                        rng.i64(0..250).into(),
                    ]
                })
                .collect(),
        };
        let orders = Table {
            columns: vec![
                ("id", Integer),
                ("user_id", Integer),
                ("product_id", Integer),
                ("quantity", Integer),
                ("status", Text),
            ],
            rows: (1..=60_i64)
                .map(|id| {
                    vec![
                        id.into(),
                        rng.i64(1..=24).into(),
                        rng.i64(1..=PRODUCTS.len() as i64).into(),
                        rng.i64(1..=5).into(),
                        ORDER_STATUSES[rng.usize(..ORDER_STATUSES.len())].into(),
                    ]
                })
                .collect(),
        };
        Self {
            tables: Mutex::new(BTreeMap::from([
                ("orders", orders),
                ("products", products),
                ("users", users),
            ])),
        }
    }

    fn tools() -> ToolRouter<DemoServer<Self>> {
        DemoServer::<Self>::tool_router()
    }
}

/// Arguments of `sql_select`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SqlSelectArgs {
    /// `SELECT cols FROM table [WHERE col = value] [LIMIT n]`; nothing else is accepted.
    sql: String,
}

/// The result of `sql_select`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct SelectOutput {
    /// The selected columns, in order.
    columns: Vec<String>,
    /// The rows, each with one value per column.
    rows: Vec<Vec<serde_json::Value>>,
    /// How many rows were returned.
    row_count: usize,
}

/// The result of `list_tables`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct TablesOutput {
    /// Every table, by name.
    tables: Vec<TableInfo>,
}

/// One table's schema and size.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct TableInfo {
    /// The table's name.
    name: String,
    /// Its columns, in order; the first is the primary key `id`.
    columns: Vec<ColumnInfo>,
    /// How many rows it holds.
    rows: usize,
}

/// One column.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ColumnInfo {
    /// The column's name.
    name: String,
    /// "integer", "text" or "boolean".
    r#type: String,
}

/// Arguments of `insert_row`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct InsertRowArgs {
    /// The table to insert into.
    table: String,
    /// A value for every column but `id` (which is assigned when omitted).
    values: serde_json::Map<String, serde_json::Value>,
}

/// The result of `insert_row`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct InsertOutput {
    /// The table the row went into.
    table: String,
    /// The new row's id.
    id: i64,
    /// The row as stored.
    row: serde_json::Map<String, serde_json::Value>,
}

#[tool_router]
impl DemoServer<DatabaseBackend> {
    #[tool(
        description = "Runs a read-only query: SELECT cols FROM table [WHERE col = value] \
                       [LIMIT n]. Anything else is refused.",
        annotations(
            title = "Query the database",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn sql_select(
        &self,
        Parameters(args): Parameters<SqlSelectArgs>,
    ) -> Result<Json<SelectOutput>, String> {
        self.backend.select(&args.sql).map(Json)
    }

    #[tool(
        description = "Lists the tables with their columns and row counts.",
        annotations(
            title = "List tables",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_tables(&self) -> Json<TablesOutput> {
        Json(self.backend.list_tables())
    }

    #[tool(
        description = "Inserts one row; every call adds a new row with a new id.",
        annotations(
            title = "Insert a row",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn insert_row(
        &self,
        Parameters(args): Parameters<InsertRowArgs>,
    ) -> Result<Json<InsertOutput>, String> {
        self.backend.insert(&args.table, args.values).map(Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::serving::test_support::{bounded, call, connect, start, structured, text_of};
    use serde_json::json;

    #[test]
    fn the_sql_subset_parses_and_refuses_the_rest_clearly() {
        let select = SqlParser::parse("select id, NAME from Users where team = 'it''s' limit 3;")
            .expect("a supported statement");
        assert_eq!(
            select,
            Select {
                columns: Some(vec!["id".to_owned(), "name".to_owned()]),
                table: "users".to_owned(),
                filter: Some(("team".to_owned(), json!("it's"))),
                limit: Some(3),
            }
        );
        for (sql, expected) in [
            ("DELETE FROM users", "only SELECT statements are supported"),
            (
                "SELECT * FROM users WHERE id > 3",
                "only equality is supported",
            ),
            (
                "SELECT * FROM users WHERE id = 1 AND team = 'x'",
                "unexpected 'AND'",
            ),
            ("SELECT * users", "expected FROM"),
            ("SELECT * FROM users LIMIT -1", "non-negative"),
            (
                "SELECT name FROM users WHERE name = 'open",
                "unterminated string",
            ),
            (
                "SELECT * FROM users WHERE id = NULL",
                "NULL is not supported",
            ),
            ("", "empty"),
        ] {
            let error = SqlParser::parse(sql).expect_err(sql);
            assert!(error.contains(expected), "{sql}: {error}");
        }
        let database = DatabaseBackend::generate(&mut fastrand::Rng::with_seed(1));
        let error = database
            .select("SELECT * FROM accounts")
            .expect_err("no such table");
        assert!(error.contains("orders, products, users"), "{error}");
        let error = database
            .select("SELECT * FROM users WHERE active = 'yes'")
            .expect_err("a boolean column");
        assert!(error.contains("true or false"), "{error}");
        let all = database.select("SELECT * FROM users").expect("valid");
        assert_eq!(all.row_count, 24);
        assert_eq!(all.columns[0], "id");
    }

    #[tokio::test]
    async fn database_selects_lists_and_inserts() {
        bounded(async {
            let instance = start(DemoKind::Database).await;
            let client = connect(&instance, ()).await;
            let selected: SelectOutput = structured(
                &call(
                    &client,
                    "sql_select",
                    json!({ "sql": "SELECT id, name, team FROM users WHERE active = true LIMIT 3" }),
                )
                .await,
            );
            assert_eq!(selected.columns, vec!["id", "name", "team"]);
            assert!(selected.row_count <= 3 && selected.row_count == selected.rows.len());

            let refused = call(&client, "sql_select", json!({ "sql": "DROP TABLE users" })).await;
            assert_eq!(refused.is_error, Some(true));
            assert!(text_of(&refused).contains("only SELECT statements are supported"));

            let row = json!({
                "table": "products",
                "values": { "sku": "SKU-9999", "name": "Demo mug", "price_cents": 1299, "stock": 3 }
            });
            let first: InsertOutput = structured(&call(&client, "insert_row", row.clone()).await);
            let second: InsertOutput = structured(&call(&client, "insert_row", row).await);
            assert_ne!(first.id, second.id, "inserting twice adds two rows");
            let found: SelectOutput = structured(
                &call(
                    &client,
                    "sql_select",
                    json!({ "sql": format!("SELECT name FROM products WHERE id = {}", first.id) }),
                )
                .await,
            );
            assert_eq!(found.rows, vec![vec![json!("Demo mug")]]);

            let incomplete = call(
                &client,
                "insert_row",
                json!({ "table": "products", "values": { "name": "No sku" } }),
            )
            .await;
            assert_eq!(incomplete.is_error, Some(true));
            assert!(text_of(&incomplete).contains("missing values for sku"));

            let tables: TablesOutput = structured(&call(&client, "list_tables", json!({})).await);
            let products = tables
                .tables
                .iter()
                .find(|table| table.name == "products")
                .expect("a products table");
            assert_eq!(products.rows, PRODUCTS.len() + 2);
            let _ = client.cancel().await;
            instance.shutdown().await;
        })
        .await;
    }
}
