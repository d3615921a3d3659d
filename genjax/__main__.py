from genjax.main import run

run()
