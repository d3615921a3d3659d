"""Training: pure steps and epochs (`steps`), members and their plans (`members`), device
layouts (`parallel`), the compiled program (`program.build_program`), the host loop
(`fit.fit`) and what runs around it (`callbacks`)."""
