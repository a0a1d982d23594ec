"""The dnd app (seed app; see DESIGN.md section 3)."""
