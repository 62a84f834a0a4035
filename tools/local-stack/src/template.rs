//! The SAM template (`infra/template.yaml`) as the local hosts read it: the one place in the
//! local stack that parses it. The hosts take their limits (function timeouts, the worker's
//! batch size and reserved concurrency) from here, so a change to the template changes the
//! local hosts with it. The text is compiled in: the hosts need no path to the repository.
//!
//! CloudFormation's short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) are kept as tagged values
//! by `serde_yaml_ng`; a `!Ref` to a template parameter resolves to the parameter's default.

use std::time::Duration;

use serde_yaml_ng::Value;

/// The template the local hosts are built from.
pub const TEMPLATE_YAML: &str = include_str!("../../../infra/template.yaml");

/// Logical ids of the functions the local hosts play.
pub const API_FUNCTION: &str = "ApiFunction";
pub const WORKER_FUNCTION: &str = "WorkerFunction";
pub const SCHEDULER_FUNCTION: &str = "SchedulerFunction";

/// Lambda's default timeout, for a function (and Globals) that sets none.
const LAMBDA_DEFAULT_TIMEOUT_SECS: u64 = 3;
/// An SQS event source mapping's default batch size.
const SQS_DEFAULT_BATCH_SIZE: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("infra/template.yaml does not parse: {0}")]
    Parse(#[from] serde_yaml_ng::Error),
    #[error("infra/template.yaml: {0}")]
    Invalid(String),
}

/// What the worker host enforces, as Lambda and the SQS event source would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLimits {
    /// The function's `Timeout`: an invocation is killed this long after it starts.
    pub timeout: Duration,
    /// The event source's `BatchSize`: messages handed to one invocation at most.
    pub batch_size: usize,
    /// Reserved concurrency (`ReservedConcurrentExecutions`, and the event source's
    /// `ScalingConfig.MaximumConcurrency`; the smaller when both are set): invocations at once.
    pub concurrency: usize,
}

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template(Value);

impl Template {
    /// The template compiled into this crate.
    pub fn embedded() -> Result<Template, TemplateError> {
        Template::parse(TEMPLATE_YAML)
    }

    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        Ok(Template(serde_yaml_ng::from_str(text)?))
    }

    fn resource(&self, id: &str) -> Result<&Value, TemplateError> {
        match &self.0["Resources"][id] {
            Value::Null => Err(TemplateError::Invalid(format!("no resource {id}"))),
            r => Ok(r),
        }
    }

    /// A number written as a YAML number, as a string (CloudFormation takes both), or as a
    /// `!Ref` (or `{Ref: ..}`) to a parameter with a default.
    fn number(&self, v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => {
                let parameter = referenced(v)?;
                self.number(&self.0["Parameters"][parameter.as_str()]["Default"])
            }
        }
    }

    fn number_at(&self, v: &Value, what: &str) -> Result<Option<u64>, TemplateError> {
        match v {
            Value::Null => Ok(None),
            v => self
                .number(v)
                .map(Some)
                .ok_or_else(|| TemplateError::Invalid(format!("{what} is not a number"))),
        }
    }

    /// A function's `Timeout` (falling back to `Globals.Function`, then Lambda's default).
    pub fn function_timeout(&self, function: &str) -> Result<Duration, TemplateError> {
        let props = &self.resource(function)?["Properties"];
        let what = format!("{function}.Timeout");
        let secs = match self.number_at(&props["Timeout"], &what)? {
            Some(s) => s,
            None => self
                .number_at(
                    &self.0["Globals"]["Function"]["Timeout"],
                    "Globals.Function.Timeout",
                )?
                .unwrap_or(LAMBDA_DEFAULT_TIMEOUT_SECS),
        };
        Ok(Duration::from_secs(secs))
    }

    /// The worker's limits: its timeout, and the batch size and concurrency of the one event
    /// source mapping that invokes it.
    pub fn worker_limits(&self) -> Result<WorkerLimits, TemplateError> {
        let timeout = self.function_timeout(WORKER_FUNCTION)?;
        let mappings: Vec<&Value> = self.0["Resources"]
            .as_mapping()
            .ok_or_else(|| TemplateError::Invalid("no Resources".into()))?
            .values()
            .filter(|r| r["Type"].as_str() == Some("AWS::Lambda::EventSourceMapping"))
            .filter(|r| {
                referenced(&r["Properties"]["FunctionName"]).as_deref() == Some(WORKER_FUNCTION)
            })
            .collect();
        let [mapping] = mappings.as_slice() else {
            return Err(TemplateError::Invalid(format!(
                "{} event source mappings invoke {WORKER_FUNCTION}; the local host plays one",
                mappings.len()
            )));
        };
        let mapping = &mapping["Properties"];
        let batch_size = self
            .number_at(&mapping["BatchSize"], "the worker's BatchSize")?
            .unwrap_or(SQS_DEFAULT_BATCH_SIZE);
        let reserved = self.number_at(
            &self.resource(WORKER_FUNCTION)?["Properties"]["ReservedConcurrentExecutions"],
            "the worker's ReservedConcurrentExecutions",
        )?;
        let maximum = self.number_at(
            &mapping["ScalingConfig"]["MaximumConcurrency"],
            "the worker's MaximumConcurrency",
        )?;
        let concurrency = match (reserved, maximum) {
            (Some(a), Some(b)) => a.min(b),
            (Some(n), None) | (None, Some(n)) => n,
            (None, None) => {
                return Err(TemplateError::Invalid(
                    "the worker's concurrency is unbounded; the local host needs a bound".into(),
                ));
            }
        };
        let size = |n: u64, what: &str| {
            usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| TemplateError::Invalid(format!("the worker's {what} is {n}")))
        };
        Ok(WorkerLimits {
            timeout,
            batch_size: size(batch_size, "BatchSize")?,
            concurrency: size(concurrency, "concurrency")?,
        })
    }
}

/// The logical id that `!Ref X` or `{Ref: X}` names.
fn referenced(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str().map(str::to_owned),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// A timeout override from the environment (whole seconds), for a local host.
pub fn timeout_override(var: &str) -> Result<Option<Duration>, TemplateError> {
    match std::env::var(var) {
        Err(_) => Ok(None),
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| Some(Duration::from_secs(n)))
            .ok_or_else(|| {
                TemplateError::Invalid(format!("{var} must be a positive number of seconds"))
            }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parameters_resolve_and_globals_and_defaults_fill_in() {
        let t = Template::parse(
            r#"
Parameters:
  N: { Type: Number, Default: 7 }
Globals:
  Function: { Timeout: 42 }
Resources:
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties: { ReservedConcurrentExecutions: !Ref N }
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties: { Timeout: "9" }
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: { Ref: WorkerFunction }
      ScalingConfig: { MaximumConcurrency: 4 }
"#,
        )
        .unwrap();
        assert_eq!(
            t.worker_limits().unwrap(),
            WorkerLimits {
                timeout: Duration::from_secs(42),
                batch_size: 10,
                concurrency: 4,
            }
        );
        assert_eq!(
            t.function_timeout(API_FUNCTION).unwrap(),
            Duration::from_secs(9)
        );
        assert!(t.function_timeout("Missing").is_err());
    }
}
