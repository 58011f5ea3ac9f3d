//! The functions about the server's connections ("backends"): `pg_backend_pid()` (the process
//! id the connection was given in BackendKeyData), `pg_cancel_backend(pid)` (a cancel request
//! without the key: the statement that connection runs ends with 57014) and
//! `pg_terminate_backend(pid)` (the same, and the connection closes with 57P01 at its next
//! statement), as dbt sends on Ctrl-C. Registered per connection. As in PostgreSQL, a
//! connection may signal only its own user's connections unless its user is a superuser
//! (`superuser = true` in `[[auth.users]]`); others get 42501.

use super::cancel::{Caller, Cancels};
use crate::pg::functions::udf;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

pub fn register(ctx: &SessionContext, pid: i32, cancels: Arc<Cancels>, caller: Caller) {
    ctx.register_udf(udf(
        "pg_backend_pid",
        vec![],
        DataType::Int32,
        Arc::new(move |_, rows| Ok(Arc::new(Int32Array::from(vec![pid; rows])) as ArrayRef)),
    ));
    type Action = fn(&Cancels, i32, &Caller) -> crate::Result<bool>;
    for (name, action) in
        [("pg_cancel_backend", Cancels::cancel_backend as Action), ("pg_terminate_backend", Cancels::terminate_backend)]
    {
        let (cancels, caller) = (cancels.clone(), caller.clone());
        ctx.register_udf(udf(
            name,
            vec![DataType::Int64],
            DataType::Boolean,
            Arc::new(move |a, _| {
                let pids = a[0].as_primitive::<Int64Type>();
                let out = (0..pids.len())
                    .map(|i| {
                        if pids.is_null(i) {
                            return Ok(None);
                        }
                        match i32::try_from(pids.value(i)) {
                            Ok(p) => action(&cancels, p, &caller).map(Some),
                            Err(_) => Ok(Some(false)),
                        }
                    })
                    .collect::<crate::Result<BooleanArray>>()
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                Ok(Arc::new(out) as ArrayRef)
            }),
        ));
    }
}
