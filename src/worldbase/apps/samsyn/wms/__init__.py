"""samsyn: wms."""
