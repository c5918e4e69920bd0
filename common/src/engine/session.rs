//! Incremental querying. The explorer reruns the engine on every change of the view, and
//! most changes (grouping, measures, sort, a filter added) do not need the table filtered
//! from scratch.

use super::{Answer, Filter, JobTable, Query, QueryError, Selection, refine, run_on, select};

/// A table and the selection of the last query's filters. A query with the same filters
/// reuses the selection; one that only adds filters narrows it; anything else filters the
/// table again. Answers are exactly [`super::run`]'s.
pub struct Session<'t> {
    table: &'t JobTable,
    last: Option<(Vec<Filter>, Selection)>,
}

impl<'t> Session<'t> {
    pub fn new(table: &'t JobTable) -> Self {
        Session { table, last: None }
    }

    pub fn run(&mut self, query: &Query) -> Result<Answer, QueryError> {
        let selection = match self.last.take() {
            Some((filters, selection)) if filters == query.filters => selection,
            Some((filters, selection)) if query.filters.starts_with(&filters) => {
                refine(self.table, &selection, &query.filters[filters.len()..])?
            }
            _ => select(self.table, &query.filters)?,
        };
        let answer = run_on(self.table, &selection, query);
        self.last = Some((query.filters.clone(), selection));
        answer
    }
}
