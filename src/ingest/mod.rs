//! Data from outside: fetching datasets with the ordinary package clients (`fetch`) and parsing
//! them into domain values (`movielens`). Pure parsing; the store writes what comes out.

pub mod fetch;
pub mod movielens;
