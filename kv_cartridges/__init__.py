"""kv_cartridges."""
