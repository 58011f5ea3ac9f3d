//! `pg_in_array(x, values)`: `x IN (subquery)` with PostgreSQL's three-valued answer, over the
//! subquery's values gathered into an array. The rewriter uses it where DataFusion cannot plan
//! an IN subquery (a select list, ORDER BY, GROUP BY: Grafana's table list). False when there
//! are no values (NULL array), whatever `x`; true when a value equals `x`; otherwise NULL when
//! `x` is NULL or a value is NULL, else false.

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Scalar};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

pub const NAME: &str = "pg_in_array";

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(InArray {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct InArray {
    signature: Signature,
}

impl ScalarUDFImpl for InArray {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    /// Both sides to the type PostgreSQL would compare them in.
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let element = match arg_types {
            [_, DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)] => f.data_type().clone(),
            [x, DataType::Null] => x.clone(),
            _ => {
                return Err(DataFusionError::Plan(format!("{NAME} takes a value and an array, not {arg_types:?}")));
            }
        };
        let common = comparison_coercion(&arg_types[0], &element).ok_or_else(|| {
            DataFusionError::Plan(format!("cannot compare {} with the subquery's {element}", arg_types[0]))
        })?;
        Ok(vec![common.clone(), DataType::List(Arc::new(Field::new_list_field(common, true)))])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::functions::over_arrays(&args.args, args.number_rows, |a, rows| in_array(&a[0], &a[1], rows))
    }
}

fn in_array(x: &ArrayRef, values: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    let lists = values.as_any().downcast_ref::<datafusion::arrow::array::ListArray>();
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        let list = match lists {
            Some(l) if !l.is_null(i) => l.value(i),
            _ => {
                out.push(Some(false));
                continue;
            }
        };
        if list.is_empty() {
            out.push(Some(false));
        } else if x.is_null(i) {
            out.push(None);
        } else if eq(&list, &Scalar::new(x.slice(i, 1)))?.true_count() > 0 {
            out.push(Some(true));
        } else if list.null_count() > 0 {
            out.push(None);
        } else {
            out.push(Some(false));
        }
    }
    Ok(Arc::new(BooleanArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::in_array;
    use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, ListArray};
    use datafusion::arrow::datatypes::Int64Type;
    use std::sync::Arc;

    #[test]
    fn three_valued_like_postgresql() {
        // Rows: (1 IN {1,2}), (3 IN {1,2}), (NULL IN {1,2}), (3 IN {1,NULL}), (1 IN {1,NULL}),
        // (NULL IN {}), (NULL IN no rows at all).
        let x: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(3), None, Some(3), Some(1), None, None]));
        let values: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(1), Some(2)]),
            Some(vec![Some(1), None]),
            Some(vec![Some(1), None]),
            Some(vec![]),
            None,
        ]));
        let out = in_array(&x, &values, 7).expect("runs");
        let out = out.as_any().downcast_ref::<BooleanArray>().expect("bool");
        let got: Vec<Option<bool>> = (0..out.len()).map(|i| (!out.is_null(i)).then(|| out.value(i))).collect();
        assert_eq!(got, [Some(true), Some(false), None, None, Some(true), Some(false), Some(false)]);
    }
}
