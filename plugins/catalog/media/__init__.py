"""Photo galleries of projects and units: processing, storage backends, API and console."""
