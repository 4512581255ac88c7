// SPDX-License-Identifier: GPL-2.0

//! A small POSIX `getopt` for the tools: clustered flags (`-fq`), option
//! values attached or separate (`-b4096`, `-b 4096`), `--` to end options.
//! Operands may be anywhere, like GNU getopt (`mkfs img -q` works).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One parsed command-line argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A flag without a value.
    Flag(char),
    /// An option with its value.
    Value(char, OsString),
    /// An operand (not an option).
    Operand(OsString),
}

/// A command-line usage error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsageError {
    /// An option that is not known.
    Unknown(char),
    /// An option that needs a value at the end of the arguments.
    MissingValue(char),
    /// Anything else, explained.
    Other(String),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Unknown(c) => write!(f, "invalid option -- '{c}'"),
            UsageError::MissingValue(c) => write!(f, "option requires an argument -- '{c}'"),
            UsageError::Other(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for UsageError {}

/// An iterator over the parsed arguments (without the program name).
pub struct GetOpt {
    args: VecDeque<OsString>,
    flags: &'static str,
    values: &'static str,
    cluster: Vec<u8>,
    pos: usize,
    operands_only: bool,
}

impl GetOpt {
    /// Parses `args`: `flags` are the option letters without a value,
    /// `values` those with one.
    pub fn new(
        args: impl IntoIterator<Item = OsString>,
        flags: &'static str,
        values: &'static str,
    ) -> GetOpt {
        GetOpt {
            args: args.into_iter().collect(),
            flags,
            values,
            cluster: Vec::new(),
            pos: 0,
            operands_only: false,
        }
    }
}

impl Iterator for GetOpt {
    type Item = Result<Arg, UsageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.cluster.len() {
            let arg = self.args.pop_front()?;
            let bytes = arg.as_bytes();
            if self.operands_only || bytes.len() < 2 || bytes[0] != b'-' {
                return Some(Ok(Arg::Operand(arg)));
            }
            if bytes == b"--" {
                self.operands_only = true;
                return self.next();
            }
            self.cluster = bytes[1..].to_vec();
            self.pos = 0;
        }
        let c = char::from(*self.cluster.get(self.pos)?);
        self.pos += 1;
        if !c.is_ascii_alphanumeric() {
            self.pos = self.cluster.len();
            return Some(Err(UsageError::Unknown(c)));
        }
        if self.flags.contains(c) {
            return Some(Ok(Arg::Flag(c)));
        }
        if !self.values.contains(c) {
            self.pos = self.cluster.len();
            return Some(Err(UsageError::Unknown(c)));
        }
        let value = if self.pos < self.cluster.len() {
            let v = OsString::from_vec(self.cluster[self.pos..].to_vec());
            self.pos = self.cluster.len();
            v
        } else {
            match self.args.pop_front() {
                Some(v) => v,
                None => return Some(Err(UsageError::MissingValue(c))),
            }
        };
        Some(Ok(Arg::Value(c, value)))
    }
}

/// An option value as UTF-8.
pub fn value_str(opt: char, v: &OsStr) -> Result<&str, UsageError> {
    v.to_str()
        .ok_or_else(|| UsageError::Other(format!("-{opt}: value is not valid UTF-8")))
}

/// Parses a decimal number (or `0x` hexadecimal) option value.
pub fn parse_u64(opt: char, v: &OsStr) -> Result<u64, UsageError> {
    let s = value_str(opt, v)?;
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    };
    parsed.map_err(|_| UsageError::Other(format!("-{opt}: invalid number '{s}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Vec<Result<Arg, UsageError>> {
        GetOpt::new(args.iter().map(OsString::from), "fqv", "bL").collect()
    }

    fn val(c: char, v: &str) -> Result<Arg, UsageError> {
        Ok(Arg::Value(c, v.into()))
    }

    #[test]
    fn clusters_values_and_operands() {
        assert_eq!(
            parse(&["-fq", "-b4096", "img", "-L", "x y", "-", "--", "-v"]),
            vec![
                Ok(Arg::Flag('f')),
                Ok(Arg::Flag('q')),
                val('b', "4096"),
                Ok(Arg::Operand("img".into())),
                val('L', "x y"),
                Ok(Arg::Operand("-".into())),
                Ok(Arg::Operand("-v".into())),
            ]
        );
        assert_eq!(
            parse(&["-qb", "1024"]),
            vec![Ok(Arg::Flag('q')), val('b', "1024")]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&["-x"]), vec![Err(UsageError::Unknown('x'))]);
        assert_eq!(parse(&["-b"]), vec![Err(UsageError::MissingValue('b'))]);
        assert_eq!(parse(&["--help"]), vec![Err(UsageError::Unknown('-'))]);
        assert_eq!(parse_u64('N', OsStr::new("0x10")), Ok(16));
        assert!(parse_u64('N', OsStr::new("-1")).is_err());
        assert!(parse_u64('N', OsStr::new("")).is_err());
    }
}
