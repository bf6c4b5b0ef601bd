//! Data from outside: fetching datasets with the ordinary package clients (`fetch`), parsing
//! them into domain values (`movielens`), and catalogue metadata from TMDb's API (`tmdb`).

pub mod fetch;
pub mod movielens;
pub mod tmdb;
