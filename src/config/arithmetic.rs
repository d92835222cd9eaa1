//! Checked arithmetic for configuration expressions.
//!
//! hcl-rs evaluates `+ - * / %` with unchecked number operations: a division
//! by zero or a result past the range of a number stops the process with a
//! panic in a debug build, and in a release build an integer overflow wraps
//! silently (`18446744073709551615 + 1` is `0`) and a division by zero yields
//! an infinity. Neither is acceptable for a value that may become a port or a
//! batch size. So before an expression is evaluated, every arithmetic
//! operation in it, in templates and `for` bodies too, is rewritten into a
//! call of [`FUNCTION`], which computes the same value with checked operations
//! and refuses what has none ("division by zero", "out of range").
//!
//! This module does not evaluate anything itself and does not touch the other
//! operators (comparisons and logic cannot fail this way).

use hcl::edit::expr::{Expression as EditExpr, FuncArgs, FuncCall, FuncName};
use hcl::edit::visit_mut::{self, VisitMut};
use hcl::edit::Ident;
use hcl::{Number, Value};

/// The function the rewritten operations call. A name no configuration has a
/// reason to use; it is kept out of the documented function list.
pub const FUNCTION: &str = "__arithmetic";

/// The operators that compute a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
}

impl Operator {
    fn of(operator: hcl::edit::expr::BinaryOperator) -> Option<Operator> {
        use hcl::edit::expr::BinaryOperator as B;
        match operator {
            B::Plus => Some(Operator::Add),
            B::Minus => Some(Operator::Subtract),
            B::Mul => Some(Operator::Multiply),
            B::Div => Some(Operator::Divide),
            B::Mod => Some(Operator::Remainder),
            _ => None,
        }
    }

    fn parse(symbol: &str) -> Option<Operator> {
        [
            Operator::Add,
            Operator::Subtract,
            Operator::Multiply,
            Operator::Divide,
            Operator::Remainder,
        ]
        .into_iter()
        .find(|operator| operator.symbol() == symbol)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Add => "+",
            Operator::Subtract => "-",
            Operator::Multiply => "*",
            Operator::Divide => "/",
            Operator::Remainder => "%",
        }
    }
}

/// Why an operation has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("division by zero")]
    DivisionByZero,
    #[error("the result is out of the range of a number")]
    OutOfRange,
    #[error("both sides must be numbers")]
    NotNumbers,
}

/// `lhs operator rhs`, computed as hcl-rs would (integers stay integers,
/// except that `/` divides as floats; a float with no fraction becomes an
/// integer) but checked.
pub fn compute(operator: Operator, lhs: &Number, rhs: &Number) -> Result<Number, Problem> {
    if let (Some(a), Some(b), false) = (integer(lhs), integer(rhs), operator == Operator::Divide) {
        let result = match operator {
            Operator::Add => a.checked_add(b),
            Operator::Subtract => a.checked_sub(b),
            Operator::Multiply => a.checked_mul(b),
            Operator::Remainder if b == 0 => return Err(Problem::DivisionByZero),
            Operator::Remainder => a.checked_rem(b),
            Operator::Divide => unreachable!("division is float division"),
        };
        return result.and_then(from_integer).ok_or(Problem::OutOfRange);
    }
    let (a, b) = (float(lhs), float(rhs));
    let result = match operator {
        Operator::Add => a + b,
        Operator::Subtract => a - b,
        Operator::Multiply => a * b,
        Operator::Divide | Operator::Remainder if b == 0.0 => return Err(Problem::DivisionByZero),
        Operator::Divide => a / b,
        Operator::Remainder => a % b,
    };
    Number::from_f64(result).ok_or(Problem::OutOfRange)
}

fn integer(number: &Number) -> Option<i128> {
    number
        .as_i64()
        .map(i128::from)
        .or_else(|| number.as_u64().map(i128::from))
}

fn float(number: &Number) -> f64 {
    number.as_f64().unwrap_or(f64::NAN)
}

fn from_integer(value: i128) -> Option<Number> {
    u64::try_from(value)
        .map(Number::from)
        .or_else(|_| i64::try_from(value).map(Number::from))
        .ok()
}

/// Why a call of [`FUNCTION`] has no value; the message is what the author
/// of the configuration reads.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Not `(symbol, lhs, rhs)`: only a hand-written call can be wrong so.
    #[error("takes an operator (\"+\", \"-\", \"*\", \"/\" or \"%\") and two numbers")]
    Arguments,
    /// The operation has no value, for example "`1 / 0`: division by zero".
    #[error("`{lhs} {} {rhs}`: {problem}", operator.symbol())]
    Refused {
        lhs: Box<Value>,
        operator: Operator,
        rhs: Box<Value>,
        problem: Problem,
    },
}

/// The function [`FUNCTION`]: `(symbol, lhs, rhs)` to the number.
pub fn call(args: hcl::eval::FuncArgs) -> Result<Value, CallError> {
    let [Value::String(symbol), lhs, rhs] = &args[..] else {
        return Err(CallError::Arguments);
    };
    let operator = Operator::parse(symbol).ok_or(CallError::Arguments)?;
    let result = match (lhs, rhs) {
        (Value::Number(a), Value::Number(b)) => compute(operator, a, b),
        _ => Err(Problem::NotNumbers),
    };
    result
        .map(Value::Number)
        .map_err(|problem| CallError::Refused {
            lhs: Box::new(lhs.clone()),
            operator,
            rhs: Box::new(rhs.clone()),
            problem,
        })
}

/// Rewrites every arithmetic operation below a node into a call of
/// [`FUNCTION`], innermost first.
pub struct Rewrite;

impl VisitMut for Rewrite {
    fn visit_expr_mut(&mut self, node: &mut EditExpr) {
        visit_mut::visit_expr_mut(self, node);
        let EditExpr::BinaryOp(op) = node else {
            return;
        };
        let Some(operator) = Operator::of(*op.operator.value()) else {
            return;
        };
        let lhs = std::mem::replace(&mut op.lhs_expr, EditExpr::from(false));
        let rhs = std::mem::replace(&mut op.rhs_expr, EditExpr::from(false));
        let mut args = FuncArgs::new();
        args.push(EditExpr::from(operator.symbol()));
        args.push(lhs);
        args.push(rhs);
        *node = EditExpr::FuncCall(Box::new(FuncCall::new(
            FuncName::new(Ident::new(FUNCTION)),
            args,
        )));
    }
}

/// Rewrite `expr` (see [`Rewrite`]).
pub fn rewrite(expr: &mut EditExpr) {
    Rewrite.visit_expr_mut(expr);
}

/// Whether `expr` may hold an arithmetic operation: one outside templates,
/// or a template (whose interpolations are only seen once parsed).
pub fn may_hold_arithmetic(debug: &str) -> bool {
    ["Plus", "Minus", "Mul", "Div", "Mod"]
        .iter()
        .any(|name| debug.contains(&format!("operator: {name}")))
        || debug.contains("TemplateExpr")
}

/// An error of [`FUNCTION`] as a plain message: its name and the rewritten
/// call mean nothing to the author of the configuration.
pub fn plain_error(error: hcl::eval::Error) -> hcl::eval::Error {
    match error.kind() {
        hcl::eval::ErrorKind::FuncCall(name, message)
            if name.namespace.is_empty() && name.name.as_str() == FUNCTION =>
        {
            hcl::eval::Error::from(hcl::eval::ErrorKind::Message(message.clone()))
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number as hcl-rs holds it: an integer where the text is one.
    fn n(text: &str) -> Number {
        text.parse::<u64>()
            .map(Number::from)
            .or_else(|_| text.parse::<i64>().map(Number::from))
            .unwrap_or_else(|_| Number::from_f64(text.parse().unwrap()).unwrap())
    }

    #[test]
    fn computes_what_hcl_computes_where_it_has_a_value() {
        use Operator::*;
        let cases = [
            (Add, "1", "2", "3"),
            (Subtract, "1", "2", "-1"),
            (Multiply, "-3", "4", "-12"),
            (Divide, "7", "2", "3.5"),
            (Divide, "6", "3", "2"),
            (Remainder, "7", "3", "1"),
            (Remainder, "-7", "3", "-1"),
            (Add, "1.5", "1.5", "3"),
            (Remainder, "7.5", "2", "1.5"),
            (Add, "18446744073709551614", "1", "18446744073709551615"),
            (Subtract, "0", "9223372036854775808", "-9223372036854775808"),
        ];
        for (operator, lhs, rhs, expected) in cases {
            let got = compute(operator, &n(lhs), &n(rhs)).unwrap();
            assert_eq!(got, n(expected), "{lhs} {} {rhs}", operator.symbol());
        }
    }

    /// Any integer, as hcl-rs holds them (u64 above, i64 below zero).
    fn any_integer() -> impl proptest::strategy::Strategy<Value = i128> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u64>().prop_map(i128::from),
            any::<i64>().prop_map(i128::from),
            (-3i128..=3),
        ]
    }

    proptest::proptest! {
        /// Integer `+ - * %` against exact 128-bit arithmetic: the same value
        /// where the result is a number, `OutOfRange` where it is not.
        #[test]
        fn integer_arithmetic_is_exact_or_refused(a in any_integer(), b in any_integer()) {
            let number = |v: i128| from_integer(v).unwrap();
            let exact = |v: Option<i128>| v.and_then(from_integer).ok_or(Problem::OutOfRange);
            let (x, y) = (number(a), number(b));
            proptest::prop_assert_eq!(compute(Operator::Add, &x, &y), exact(a.checked_add(b)));
            proptest::prop_assert_eq!(compute(Operator::Subtract, &x, &y), exact(a.checked_sub(b)));
            proptest::prop_assert_eq!(compute(Operator::Multiply, &x, &y), exact(a.checked_mul(b)));
            let remainder = if b == 0 { Err(Problem::DivisionByZero) } else { exact(a.checked_rem(b)) };
            proptest::prop_assert_eq!(compute(Operator::Remainder, &x, &y), remainder);
            let quotient = compute(Operator::Divide, &x, &y);
            if b == 0 {
                proptest::prop_assert_eq!(quotient, Err(Problem::DivisionByZero));
            } else {
                let value = quotient.unwrap().as_f64().unwrap();
                proptest::prop_assert!(value.is_finite());
                proptest::prop_assert_eq!(value, a as f64 / b as f64);
            }
        }

        /// Float arithmetic never yields an infinity or NaN.
        #[test]
        fn float_arithmetic_is_finite_or_refused(a in proptest::num::f64::NORMAL, b in proptest::num::f64::NORMAL) {
            let (x, y) = (Number::from_f64(a).unwrap(), Number::from_f64(b).unwrap());
            for operator in [Operator::Add, Operator::Subtract, Operator::Multiply, Operator::Divide, Operator::Remainder] {
                if let Ok(value) = compute(operator, &x, &y) {
                    proptest::prop_assert!(value.as_f64().unwrap().is_finite());
                }
            }
        }
    }

    #[test]
    fn refuses_what_has_no_value() {
        use Operator::*;
        use Problem::*;
        let cases = [
            (Divide, "1", "0", DivisionByZero),
            (Divide, "0", "0", DivisionByZero),
            (Divide, "1.5", "0.0", DivisionByZero),
            (Remainder, "1", "0", DivisionByZero),
            (Remainder, "1.5", "0", DivisionByZero),
            (Add, "18446744073709551615", "1", OutOfRange),
            (
                Multiply,
                "18446744073709551615",
                "18446744073709551615",
                OutOfRange,
            ),
            (Subtract, "-9223372036854775808", "1", OutOfRange),
            (Multiply, "1e308", "10", OutOfRange),
            (Divide, "1e308", "1e-308", OutOfRange),
        ];
        for (operator, lhs, rhs, expected) in cases {
            let got = compute(operator, &n(lhs), &n(rhs));
            assert_eq!(got, Err(expected), "{lhs} {} {rhs}", operator.symbol());
        }
    }
}
