"""One module per link of the chain; each turns one part's public API into a verdict."""
