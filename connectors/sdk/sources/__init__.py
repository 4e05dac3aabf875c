"""Source kinds that agency systems offer: a file drop folder, a database poll, an HTTP push."""
