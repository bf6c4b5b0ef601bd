//! The home query answered without async-graphql's executor, written straight to JSON.
//!
//! A home page is about 2,000 fields. The executor resolves each into a `Value` tree (a map
//! insert, a `Name` clone and a small allocation per field), serializes the tree and drops
//! it: callgrind put that at about 1.1 M of a warm page's 1.76 M instructions, most of it the
//! same work for every page. Clients send the same few home queries again and again, so the
//! selection of such a query is compiled once (`HomePlan`, kept with its parsed document in
//! `PersistedQueries`) and a page's fields are written from the schema types' own values
//! (`types::HomePage`, built by the same mapping the executor resolves) in the query's order.
//!
//! Only what the executor would answer identically is taken over:
//! - the query text ran once through the executor without any error, so it parsed,
//!   validated and kept within the depth, complexity and shape limits (a plan accepts no
//!   variable those limits could depend on);
//! - one operation, a query, whose one root field is `home`; no fragments and no directives
//!   anywhere; no response key twice in one selection set (which would need merging);
//! - `home`'s arguments are `profileId`, `platform` and `appVersion`, each a literal or a
//!   variable that the request gives as a string; `items(first:)` takes a literal;
//! - every selected field is one written here (`__typename` anywhere).
//!
//! Anything else, and every failure — no caller, an argument the executor would refuse, a
//! missing or foreign profile, an unavailable store — goes through the executor, which
//! answers with its usual error. (A page that failed in the store is asked for once more
//! that way: the price of one definition of every error's shape, on a path that is rare.) `tests/api.rs` and `tests/tmdb.rs` compare both answers for
//! every field and for random selections with aliases.

use std::any::TypeId;
use std::time::Instant;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{ID, Name, Positioned};
use async_graphql_value::{ConstValue, Value};
use serde::Serialize;

use super::access::rule;
use super::types::{Assignment, CastMember, HomePage, MaturityRating, Row, RowItem, Title};
use crate::app::AppState;
use crate::auth::Caller;
use crate::telemetry;

/// A compiled home query: the response key of `home`, its arguments, and the fields to write.
#[derive(Debug)]
pub struct HomePlan {
    /// The operation's name, which a request's `operationName` must match if it gives one.
    operation: Option<Name>,
    /// `"home":`, or the alias.
    key: String,
    profile_id: Arg,
    platform: Option<Arg>,
    app_version: Option<Arg>,
    page: Fields<PageField>,
}

#[derive(Debug)]
enum Arg {
    Literal(String),
    Variable(Name),
}

impl Arg {
    /// The argument's value; `None` when the request's variable is missing or not a string
    /// (the executor decides what that means).
    fn value(&self, variables: &async_graphql::Variables) -> Option<String> {
        match self {
            Arg::Literal(s) => Some(s.clone()),
            Arg::Variable(name) => match variables.get(name) {
                Some(ConstValue::String(s)) => Some(s.clone()),
                _ => None,
            },
        }
    }
}

/// The selected fields of one object, each with its JSON key (`"key":`) in query order.
type Fields<F> = Vec<(String, F)>;

#[derive(Debug)]
enum PageField {
    Typename,
    RequestId,
    GeneratedAt,
    ModelVersion,
    Degraded,
    Assignments(Fields<AssignmentField>),
    Rows(Fields<RowField>),
}

#[derive(Debug)]
enum AssignmentField {
    Typename,
    FeatureKey,
    ExperimentKey,
    VariationIndex,
    VariationKey,
    InExperiment,
    HashUsed,
}

#[derive(Debug)]
enum RowField {
    Typename,
    Id,
    Title,
    Definition,
    Kind,
    ModelVersion,
    Anchor(Fields<TitleField>),
    Items {
        first: Option<usize>,
        fields: Fields<ItemField>,
    },
}

#[derive(Debug)]
enum ItemField {
    Typename,
    Position,
    Score,
    Reason,
    Title(Fields<TitleField>),
    Evidence(Fields<TitleField>),
    Progress(Fields<ProgressField>),
}

#[derive(Debug)]
enum ProgressField {
    Typename,
    Fraction,
    Percent,
}

#[derive(Debug)]
enum TitleField {
    Typename,
    Id,
    Name,
    Year,
    Genres,
    MaturityRating,
    Overview,
    AddedAt,
    Countries,
    Tagline,
    Runtime,
    OriginalLanguage,
    Cast(Fields<CastField>),
    Director,
    PosterUrl,
    BackdropUrl,
}

#[derive(Debug)]
enum CastField {
    Typename,
    Name,
    Character,
}

// ---------------------------------------------------------------------------------------------
// Compiling a document

impl HomePlan {
    /// The plan of `doc`, or `None` when the executor must answer it (see the module doc).
    /// Call it only for a document the executor has answered without errors.
    pub fn compile(doc: &ExecutableDocument) -> Option<HomePlan> {
        if !doc.fragments.is_empty() {
            return None;
        }
        let (operation, op) = match &doc.operations {
            DocumentOperations::Single(op) => (None, op),
            DocumentOperations::Multiple(ops) if ops.len() == 1 => {
                let (name, op) = ops.iter().next()?;
                (Some(name.clone()), op)
            }
            DocumentOperations::Multiple(_) => return None,
        };
        let op = &op.node;
        // A default value would be the executor's to apply.
        if op.ty != OperationType::Query
            || !op.directives.is_empty()
            || op
                .variable_definitions
                .iter()
                .any(|v| v.node.default_value.is_some() || !v.node.directives.is_empty())
        {
            return None;
        }
        let Ok::<[_; 1], _>([(key, home)]) = fields(&op.selection_set)?.try_into() else {
            return None;
        };
        if home.name.node != "home" {
            return None;
        }
        let (mut profile_id, mut platform, mut app_version) = (None, None, None);
        for (name, value) in &home.arguments {
            let arg = match &value.node {
                Value::String(s) => Arg::Literal(s.clone()),
                Value::Variable(v) => Arg::Variable(v.clone()),
                _ => return None,
            };
            match name.node.as_str() {
                "profileId" => profile_id = Some(arg),
                "platform" => platform = Some(arg),
                "appVersion" => app_version = Some(arg),
                _ => return None,
            }
        }
        Some(HomePlan {
            operation,
            key,
            profile_id: profile_id?,
            platform,
            app_version,
            page: object(home, page_field)?,
        })
    }
}

/// The fields of a selection set with their JSON keys; `None` for fragments, directives or a
/// response key given twice.
fn fields(set: &Positioned<SelectionSet>) -> Option<Vec<(String, &Field)>> {
    let mut out: Vec<(String, &Field)> = Vec::with_capacity(set.node.items.len());
    for item in &set.node.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.directives.is_empty() {
            return None;
        }
        let key = format!("\"{}\":", field.response_key().node);
        if out.iter().any(|(k, _)| *k == key) {
            return None;
        }
        out.push((key, field));
    }
    Some(out)
}

/// The compiled selection of an object-valued field.
fn object<F>(field: &Field, each: fn(&Field) -> Option<F>) -> Option<Fields<F>> {
    if field.selection_set.node.items.is_empty() {
        return None;
    }
    fields(&field.selection_set)?
        .into_iter()
        .map(|(key, f)| Some((key, each(f)?)))
        .collect()
}

/// A leaf field without arguments.
fn leaf<F>(field: &Field, f: F) -> Option<F> {
    (field.arguments.is_empty() && field.selection_set.node.items.is_empty()).then_some(f)
}

/// An object field without arguments.
fn nested<F>(field: &Field, each: fn(&Field) -> Option<F>) -> Option<Fields<F>> {
    if !field.arguments.is_empty() {
        return None;
    }
    object(field, each)
}

fn page_field(f: &Field) -> Option<PageField> {
    match f.name.node.as_str() {
        "__typename" => leaf(f, PageField::Typename),
        "requestId" => leaf(f, PageField::RequestId),
        "generatedAt" => leaf(f, PageField::GeneratedAt),
        "modelVersion" => leaf(f, PageField::ModelVersion),
        "degraded" => leaf(f, PageField::Degraded),
        "assignments" => nested(f, assignment_field).map(PageField::Assignments),
        "rows" => nested(f, row_field).map(PageField::Rows),
        _ => None,
    }
}

fn assignment_field(f: &Field) -> Option<AssignmentField> {
    use AssignmentField as A;
    match f.name.node.as_str() {
        "__typename" => leaf(f, A::Typename),
        "featureKey" => leaf(f, A::FeatureKey),
        "experimentKey" => leaf(f, A::ExperimentKey),
        "variationIndex" => leaf(f, A::VariationIndex),
        "variationKey" => leaf(f, A::VariationKey),
        "inExperiment" => leaf(f, A::InExperiment),
        "hashUsed" => leaf(f, A::HashUsed),
        _ => None,
    }
}

fn row_field(f: &Field) -> Option<RowField> {
    match f.name.node.as_str() {
        "__typename" => leaf(f, RowField::Typename),
        "id" => leaf(f, RowField::Id),
        "title" => leaf(f, RowField::Title),
        "definition" => leaf(f, RowField::Definition),
        "kind" => leaf(f, RowField::Kind),
        "modelVersion" => leaf(f, RowField::ModelVersion),
        "anchor" => nested(f, title_field).map(RowField::Anchor),
        "items" => {
            let first = match &f.arguments[..] {
                [] => None,
                [(name, value)] if name.node == "first" => match &value.node {
                    // The executor refuses a `first` out of range; a plan exists only for a
                    // document it answered without errors, but check anyway.
                    Value::Number(n) => {
                        let n = i32::try_from(n.as_i64()?).ok()?;
                        Some(super::parse_first(n).ok()?)
                    }
                    _ => return None,
                },
                _ => return None,
            };
            Some(RowField::Items {
                first,
                fields: object(f, item_field)?,
            })
        }
        _ => None,
    }
}

fn item_field(f: &Field) -> Option<ItemField> {
    match f.name.node.as_str() {
        "__typename" => leaf(f, ItemField::Typename),
        "position" => leaf(f, ItemField::Position),
        "score" => leaf(f, ItemField::Score),
        "reason" => leaf(f, ItemField::Reason),
        "title" => nested(f, title_field).map(ItemField::Title),
        "evidence" => nested(f, title_field).map(ItemField::Evidence),
        "progress" => nested(f, progress_field).map(ItemField::Progress),
        _ => None,
    }
}

fn progress_field(f: &Field) -> Option<ProgressField> {
    match f.name.node.as_str() {
        "__typename" => leaf(f, ProgressField::Typename),
        "fraction" => leaf(f, ProgressField::Fraction),
        "percent" => leaf(f, ProgressField::Percent),
        _ => None,
    }
}

fn title_field(f: &Field) -> Option<TitleField> {
    use TitleField as T;
    match f.name.node.as_str() {
        "__typename" => leaf(f, T::Typename),
        "id" => leaf(f, T::Id),
        "name" => leaf(f, T::Name),
        "year" => leaf(f, T::Year),
        "genres" => leaf(f, T::Genres),
        "maturityRating" => leaf(f, T::MaturityRating),
        "overview" => leaf(f, T::Overview),
        "addedAt" => leaf(f, T::AddedAt),
        "countries" => leaf(f, T::Countries),
        "tagline" => leaf(f, T::Tagline),
        "runtime" => leaf(f, T::Runtime),
        "originalLanguage" => leaf(f, T::OriginalLanguage),
        "cast" => nested(f, cast_field).map(T::Cast),
        "director" => leaf(f, T::Director),
        "posterUrl" => leaf(f, T::PosterUrl),
        "backdropUrl" => leaf(f, T::BackdropUrl),
        _ => None,
    }
}

fn cast_field(f: &Field) -> Option<CastField> {
    match f.name.node.as_str() {
        "__typename" => leaf(f, CastField::Typename),
        "name" => leaf(f, CastField::Name),
        "character" => leaf(f, CastField::Character),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Answering

impl HomePlan {
    /// The whole response body (`{"data":{…}}`) for `request`, or `None` when the executor
    /// must answer it: another operation named, no caller allowed to call `home`, an argument
    /// it would refuse, or any error from the page itself.
    pub async fn answer(&self, app: &AppState, request: &async_graphql::Request) -> Option<String> {
        if let Some(name) = &request.operation_name
            && self.operation.as_deref() != Some(name.as_str())
        {
            return None;
        }
        let caller = request
            .data
            .get(&TypeId::of::<Caller>())?
            .downcast_ref::<Caller>()?;
        if !rule("Query", "home")?.allows(Some(caller)) {
            return None;
        }
        let optional = |arg: &Option<Arg>| match arg {
            None => Some(None),
            Some(a) => a.value(&request.variables).map(Some),
        };
        let home_request = super::query::home_request(
            ID(self.profile_id.value(&request.variables)?),
            optional(&self.platform)?,
            optional(&self.app_version)?,
            None,
            None,
        )
        .ok()?;
        let home = app.caller_home(caller, home_request).await.ok()?;
        // Encoding is the `serialization` stage, as the executor's response's is (`http`).
        let started = Instant::now();
        let page = HomePage::from(home);
        // Room for a full page without regrowing: the bench's page is 36 kB on MovieLens
        // alone, more with TMDb's overviews and image URLs.
        let mut out = Vec::with_capacity(96 * 1024);
        out.extend_from_slice(b"{\"data\":{");
        out.extend_from_slice(self.key.as_bytes());
        write_page(&mut out, &page, &self.page);
        out.extend_from_slice(b"}}");
        telemetry::record_stage(telemetry::Stage::Serialization, started.elapsed());
        // Only `str`s and serde_json's output went in.
        String::from_utf8(out).ok()
    }
}

/// Writes `value` as serde_json does (strings escaped, floats as ryu writes them, non-finite
/// numbers as null), which is how the executor's `Value`s are encoded too.
fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and none of these types refuses to serialize.
    let _ = serde_json::to_writer(out, value);
}

/// `{"key":value,…}` for `fields` of `item`.
fn write_object<T, F>(
    out: &mut Vec<u8>,
    item: &T,
    fields: &[(String, F)],
    write: fn(&mut Vec<u8>, &T, &F),
) {
    out.push(b'{');
    for (i, (key, field)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key.as_bytes());
        write(out, item, field);
    }
    out.push(b'}');
}

fn write_list<'a, T: 'a, F>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = &'a T>,
    fields: &[(String, F)],
    write: fn(&mut Vec<u8>, &T, &F),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_object(out, item, fields, write);
    }
    out.push(b']');
}

fn write_page(out: &mut Vec<u8>, page: &HomePage, fields: &[(String, PageField)]) {
    write_object(out, page, fields, |out, page, field| match field {
        PageField::Typename => put(out, "HomePage"),
        PageField::RequestId => put(out, &page.request_id.0),
        PageField::GeneratedAt => put(out, &page.generated_at),
        PageField::ModelVersion => put(out, &page.model_version),
        PageField::Degraded => put(out, &page.degraded),
        PageField::Assignments(fields) => {
            write_list(out, &page.assignments, fields, write_assignment)
        }
        PageField::Rows(fields) => write_list(out, &page.rows, fields, write_row),
    });
}

fn write_assignment(out: &mut Vec<u8>, a: &Assignment, field: &AssignmentField) {
    use AssignmentField as A;
    match field {
        A::Typename => put(out, "Assignment"),
        A::FeatureKey => put(out, &a.feature_key),
        A::ExperimentKey => put(out, &a.experiment_key),
        A::VariationIndex => put(out, &a.variation_index),
        A::VariationKey => put(out, &a.variation_key),
        A::InExperiment => put(out, &a.in_experiment),
        A::HashUsed => put(out, &a.hash_used),
    }
}

fn write_row(out: &mut Vec<u8>, row: &Row, field: &RowField) {
    match field {
        RowField::Typename => put(out, "Row"),
        RowField::Id => put(out, &row.id.0),
        RowField::Title => put(out, &row.title),
        RowField::Definition => put(out, &row.definition.0),
        RowField::Kind => put(out, &row.kind),
        RowField::ModelVersion => put(out, &row.model_version),
        RowField::Anchor(fields) => match &row.anchor {
            Some(t) => write_object(out, t, fields, write_title),
            None => put(out, &()),
        },
        RowField::Items { first, fields } => {
            write_list(out, row.first_items(*first), fields, write_item)
        }
    }
}

fn write_item(out: &mut Vec<u8>, item: &RowItem, field: &ItemField) {
    match field {
        ItemField::Typename => put(out, "RowItem"),
        ItemField::Position => put(out, &item.position),
        ItemField::Score => put(out, &item.score),
        ItemField::Reason => put(out, &item.reason),
        ItemField::Title(fields) => write_object(out, &item.title, fields, write_title),
        ItemField::Evidence(fields) => write_list(out, &item.evidence, fields, write_title),
        ItemField::Progress(fields) => match &item.progress {
            Some(p) => write_object(out, p, fields, |out, p, field| match field {
                ProgressField::Typename => put(out, "WatchProgress"),
                ProgressField::Fraction => put(out, &p.fraction),
                ProgressField::Percent => put(out, &p.percent),
            }),
            None => put(out, &()),
        },
    }
}

fn write_title(out: &mut Vec<u8>, title: &Title, field: &TitleField) {
    use TitleField as T;
    let written = |out: &mut Vec<u8>, pick: fn(&TitleJson) -> &[u8]| match written_title(title) {
        Some(json) => out.extend_from_slice(pick(json)),
        None => out.extend_from_slice(pick(&TitleJson::of(title))),
    };
    match field {
        T::Typename => put(out, "Title"),
        T::Id => written(out, |j| &j.id),
        T::Name => written(out, |j| &j.name),
        T::Year => put(out, &title.year_value()),
        T::Genres => written(out, |j| &j.genres),
        T::MaturityRating => put(out, &title.maturity().map(MaturityRating::graphql_name)),
        T::Overview => written(out, |j| &j.overview),
        T::AddedAt => written(out, |j| &j.added_at),
        T::Countries => put(out, &title.country_list()),
        T::Tagline => written(out, |j| &j.tagline),
        T::Runtime => put(out, &title.runtime_minutes()),
        T::OriginalLanguage => put(out, &title.original_language_code()),
        T::Cast(fields) => write_list(out, &title.cast_members(), fields, write_cast),
        T::Director => written(out, |j| &j.director),
        T::PosterUrl => written(out, |j| &j.poster),
        T::BackdropUrl => written(out, |j| &j.backdrop),
    }
}

/// A title's fields whose JSON takes work to write (escaped text, a formatted date, a joined
/// list), written once per title and engine. A page names ~200 titles, mostly the same ones
/// page after page; escaping their overviews alone was ~5 % of a warm page's instructions.
/// Written by `put` from the same accessors as every other field, so the bytes are the same.
struct TitleJson {
    id: Box<[u8]>,
    name: Box<[u8]>,
    genres: Box<[u8]>,
    overview: Box<[u8]>,
    added_at: Box<[u8]>,
    tagline: Box<[u8]>,
    director: Box<[u8]>,
    poster: Box<[u8]>,
    backdrop: Box<[u8]>,
}

impl TitleJson {
    fn of(title: &Title) -> Self {
        fn json<T: Serialize + ?Sized>(value: &T) -> Box<[u8]> {
            let mut out = Vec::new();
            put(&mut out, value);
            out.into_boxed_slice()
        }
        TitleJson {
            id: json(&title.id_text()),
            name: json(title.name_text()),
            genres: json(title.genre_list()),
            overview: json(&title.overview_text()),
            added_at: json(&title.added_at_text()),
            tagline: json(&title.tagline_text()),
            director: json(&title.director_text()),
            poster: json(&title.poster()),
            backdrop: json(&title.backdrop()),
        }
    }
}

/// Every title's `TitleJson`, by catalogue index, kept with the engine (`Engine::derived`):
/// a new model or catalogue starts afresh, and the old ones go with the old engine.
struct WrittenTitles(Vec<std::sync::OnceLock<TitleJson>>);

/// `title`'s `TitleJson`, written on first use; `None` if the engine's derived slot holds
/// something else (then the caller writes the fields itself).
fn written_title(title: &Title) -> Option<&TitleJson> {
    let (engine, idx) = title.engine_and_idx();
    let all = engine.derived.get_or_init(|| {
        WrittenTitles(
            (0..engine.catalog.len())
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        )
    })?;
    Some(
        all.0
            .get(idx as usize)?
            .get_or_init(|| TitleJson::of(title)),
    )
}

fn write_cast(out: &mut Vec<u8>, member: &CastMember, field: &CastField) {
    match field {
        CastField::Typename => put(out, "CastMember"),
        CastField::Name => put(out, &member.name),
        CastField::Character => put(out, &member.character),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str) -> Option<HomePlan> {
        HomePlan::compile(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn plain_selections_of_a_page_compile() {
        let p = plan(
            r#"query Home($p: ID!) { page: home(profileId: $p, platform: "tv") { requestId
                rows { id items(first: 3) { score t: title { name cast { name } } } } } }"#,
        )
        .unwrap();
        assert_eq!(p.operation.as_deref(), Some("Home"));
        assert_eq!(p.key, r#""page":"#);
        assert!(matches!(&p.profile_id, Arg::Variable(v) if v.as_str() == "p"));
        assert!(matches!(&p.platform, Some(Arg::Literal(s)) if s == "tv"));
        let [(rows_key, PageField::Rows(rows))] = &p.page[1..] else {
            panic!("{:?}", p.page);
        };
        assert_eq!(rows_key, r#""rows":"#);
        assert!(matches!(&rows[1].1, RowField::Items { first: Some(3), .. }));
        assert!(plan(r#"{ home(profileId: "1") { __typename } }"#).is_some());
    }

    #[test]
    fn what_the_executor_must_answer_does_not_compile() {
        for query in [
            // Fragments, inline or named.
            r#"{ home(profileId: "1") { ... on HomePage { requestId } } }"#,
            r#"{ home(profileId: "1") { ...F } } fragment F on HomePage { requestId }"#,
            // Directives, on a field or on the operation.
            r#"{ home(profileId: "1") { requestId @include(if: true) } }"#,
            r#"query @deprecated { home(profileId: "1") { requestId } }"#,
            // A response key twice (merged by the executor).
            r#"{ home(profileId: "1") { rows { id } rows { title } } }"#,
            r#"{ home(profileId: "1") { a: requestId a: modelVersion } }"#,
            // Another root field beside or instead of `home`.
            r#"{ home(profileId: "1") { requestId } genres }"#,
            r#"{ previewHome(profileId: "1") { requestId } }"#,
            // Arguments a plan does not take, or values that are not strings.
            r#"{ home(profileId: "1", attributes: {}) { requestId } }"#,
            r#"{ home(profileId: 1) { requestId } }"#,
            r#"{ home(profileId: "1", platform: null) { requestId } }"#,
            r#"{ home(profileId: "1") { rows { items(first: $n) { score } } } }"#,
            r#"query($p: ID! = "1") { home(profileId: $p) { requestId } }"#,
            // Fields `direct` does not write.
            r#"{ home(profileId: "1") { unknownField } }"#,
            r#"{ home(profileId: "1") { rows { items { title { similar { id } } } } } }"#,
            // Other operations.
            r#"mutation { home(profileId: "1") { requestId } }"#,
            r#"query A { home(profileId: "1") { requestId } } query B { genres }"#,
        ] {
            assert!(plan(query).is_none(), "{query}");
        }
    }
}
