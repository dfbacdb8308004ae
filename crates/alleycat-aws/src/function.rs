//! What every function's `main` does besides building its adapters: logs, serving, metrics.

use alleycat_lambda::{Function, Metrics};
use lambda_runtime::{LambdaEvent, service_fn};

/// Logs as Lambda's advanced logging controls ask (`AWS_LAMBDA_LOG_FORMAT=JSON` for structured
/// JSON, `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` for the level). Call first thing in `main`.
pub fn init_logs() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The variable naming the deployment (the template sets it to the stack's name for every
/// function): the metrics' `Stack` dimension. Unset, the metrics have the `Function` dimension only.
pub const STACK_NAME: &str = "STACK_NAME";

/// Serves `function` on the Lambda Runtime API until the sandbox is shut down: each event is
/// handed to [`Function::handle`], its counts are emitted as one EMF line (dimensions `Function`,
/// and `Stack` from [`STACK_NAME`]), and the response (or the error, which makes Lambda retry the
/// event) goes back to Lambda.
pub async fn serve<F: Function>(function: F) -> Result<(), lambda_runtime::Error> {
    let function = &function;
    let stack = env_var(STACK_NAME).filter(|name| !name.is_empty());
    let stack = &stack;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<F::Event>| async move {
        let mut metrics = match stack {
            Some(stack) => Metrics::new(F::NAME).with_stack(stack.as_str()),
            None => Metrics::new(F::NAME),
        };
        // Boxed: one allocation per invocation keeps the handler's deeply nested future out of
        // the runtime's type, whose layout would otherwise exceed the compiler's recursion limit.
        let result = Box::pin(function.handle(event.payload, &mut metrics)).await;
        metrics.emit();
        result.map_err(|error| lambda_runtime::Error::from(Box::new(error)))
    }))
    .await
}

/// Reads an environment variable for a function's `Config::from_lookup`.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Why a function's `main` gave up: returned from `main`, it prints the error's message (and its
/// sources), not its `Debug` form, so a missing variable reads "TABLE_NAME is not set" in the
/// function's log.
pub struct Fatal(Box<dyn std::error::Error + Send + Sync>);

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for Fatal {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl std::fmt::Debug for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
