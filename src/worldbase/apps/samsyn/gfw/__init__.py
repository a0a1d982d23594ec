"""Global Fishing Watch: SamSyn's proxy for GFW's 4Wings heatmap tiles."""
