package main

import (
	"github.com/spf13/cobra"
)

var completionCmd = &cobra.Command{
	Use:   "completion bash|zsh|fish|powershell",
	Short: "Print a shell completion script",
	Long: `Print the script that makes your shell complete pxq's commands and flags.
Load it in the current shell, or install it where your shell looks for
completions.`,
	Example: `  source <(pxq completion bash)
  pxq completion bash > /etc/bash_completion.d/pxq
  pxq completion zsh > "${fpath[1]}/_pxq"
  pxq completion fish > ~/.config/fish/completions/pxq.fish`,
	Args:      cobra.ExactArgs(1),
	ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
	RunE: func(c *cobra.Command, args []string) error {
		out := c.OutOrStdout()
		switch args[0] {
		case "bash":
			return rootCmd.GenBashCompletionV2(out, true)
		case "zsh":
			return rootCmd.GenZshCompletion(out)
		case "fish":
			return rootCmd.GenFishCompletion(out, true)
		case "powershell":
			return rootCmd.GenPowerShellCompletionWithDesc(out)
		}
		return usagef("completion %q: want bash, zsh, fish or powershell", args[0])
	},
}

func init() {
	rootCmd.CompletionOptions.DisableDefaultCmd = true
	rootCmd.AddCommand(completionCmd)
}
