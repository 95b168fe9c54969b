package command

// Costly implements engine.Costly: every point runs a program.
func (e *Engine) Costly() bool { return true }
