//! `dhow docs [SECTION]`: the configuration reference, section by section. The text is the same
//! schema the validator checks against, so the docs and the checks cannot drift apart.

use dhow_core::config::{SECTIONS, docs};

use crate::error::Error;
use crate::printer::Printer;

pub fn run(section: Option<&str>, printer: Printer) -> Result<(), Error> {
    match docs(section) {
        Some(text) => {
            printer.data(text);
            Ok(())
        }
        None => Err(Error::Usage {
            message: format!(
                "unknown docs section `{}`; sections: {}",
                section.unwrap_or_default(),
                SECTIONS.join(", ")
            ),
        }),
    }
}
