//! Who and where the session is: privileges (all granted), `version()`, the current
//! database, schema and user.

use super::*;

pub(super) fn register(ctx: &SessionContext, store: &Arc<Store>, info: &SessionInfo, path: &SearchPathFn) {
    let (text, int8) = (DataType::Utf8, DataType::Int64);
    let _ = (&text, &int8, store, info, path);
    // Every object is readable by every user: journeydb has no grants yet.
    for name in PRIVILEGE_CHECKS {
        ctx.register_udf(ScalarUDF::from(KernelUdf {
            name: name.into(),
            signature: Signature::variadic_any(Volatility::Stable),
            output: DataType::Boolean,
            kernel: Arc::new(|_, rows| Ok(Arc::new(BooleanArray::from(vec![true; rows])) as ArrayRef)),
        }));
    }
    ctx.register_udf(udf("version", vec![], text.clone(), constant_text(crate::pg::version_string())));
    ctx.register_udf(udf("current_database", vec![], text.clone(), constant_text(info.database.clone())));
    // current_schema(): the first schema of the search path that exists (NULL when none does).
    let first = path.clone();
    ctx.register_udf(udf(
        "current_schema",
        vec![],
        text.clone(),
        Arc::new(move |_, rows| Ok(Arc::new(StringArray::from(vec![first().into_iter().next(); rows])) as ArrayRef)),
    ));
    // `user`, `current_user`, `session_user` (the rewriter calls the pg_ forms: the parser
    // reads the bare keywords as calls without an argument list).
    for name in ["current_user", "session_user", "pg_current_user", "pg_session_user"] {
        ctx.register_udf(udf(name, vec![], text.clone(), constant_text(info.user.clone())));
    }
}
