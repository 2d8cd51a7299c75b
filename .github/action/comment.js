// Posts the cas diff report as ONE pull-request comment, updated in place on every push.
// The comment is found by the marker cas diff writes on its first line, so other bots'
// and reviewers' comments are never touched. Called from action.yml through
// actions/github-script; the tests call it with a fake `github`.
const fs = require('fs');

const MARKER = '<!-- cas-diff -->';

module.exports = async ({ github, context, report }) => {
  let body = fs.readFileSync(report, 'utf8');
  if (!body.startsWith(MARKER)) {
    body = `${MARKER}\n${body}`;
  }
  const { owner, repo } = context.repo;
  const issue_number = context.issue.number;
  const comments = await github.paginate(github.rest.issues.listComments,
    { owner, repo, issue_number, per_page: 100 });
  const mine = comments.find((c) => c.body && c.body.startsWith(MARKER));
  if (mine) {
    await github.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
    return { action: 'updated', id: mine.id };
  }
  const made = await github.rest.issues.createComment({ owner, repo, issue_number, body });
  return { action: 'created', id: made && made.data ? made.data.id : undefined };
};
