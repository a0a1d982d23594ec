"""The osm app (seed app; see DESIGN.md section 3)."""
