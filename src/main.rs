//! swing CLI (placeholder until issue A's commands land).
fn main() {
    print!("{}", swing_schema::plan_schema_pretty());
}
