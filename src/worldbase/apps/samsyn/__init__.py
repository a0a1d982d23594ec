"""The samsyn app (seed app; see DESIGN.md section 3)."""
