//! Log formats. gptme is the first and only one so far; another agent's format would sit beside
//! it with the same pieces: discovery, a line accumulator, side files, an item renderer.

pub mod gptme;
