import { useId, useMemo, useState } from 'react';
import { analyzeText } from '../untrusted';

export const UNTRUSTED_LIMIT = 600;

interface Props {
  /** Agent-supplied text. `null`/`undefined` shows "not provided". */
  text: string | null | undefined;
  /** Identifier style (agent id, resource, tool name): inline, monospace, newline and tab made visible. */
  identifier?: boolean;
  /** Characters shown before the "Show all" control. */
  limit?: number;
}

/**
 * Renders untrusted text as React text only (never HTML). Bidirectional, invisible and control
 * characters become visible tokens; mixed Latin/Cyrillic/Greek words are flagged; long text is
 * cut with an explicit control and its full length, never silently.
 */
export function Untrusted({ text, identifier = false, limit = UNTRUSTED_LIMIT }: Props) {
  const [expanded, setExpanded] = useState(false);
  const textId = useId();
  const analysis = useMemo(
    () => (text == null ? null : analyzeText(text, expanded ? Number.POSITIVE_INFINITY : limit, identifier)),
    [text, expanded, limit, identifier],
  );
  const Wrapper = identifier ? 'span' : 'div';
  const Body = identifier ? 'span' : 'div';

  if (analysis === null) return <span className="ut-empty">not provided</span>;
  if (analysis.length === 0) return <span className="ut-empty">empty</span>;

  const long = analysis.length > limit;
  const flags = analysis.hiddenCount > 0 || analysis.mixedScripts;

  return (
    <Wrapper className={identifier ? 'ut ut-id' : 'ut ut-block'}>
      {flags && (
        <span className="ut-flags">
          {analysis.hiddenCount > 0 && (
            <span className="badge badge-warn" title={analysis.hiddenNames.join(', ')}>
              ⚠ hidden characters ({analysis.hiddenCount})
            </span>
          )}
          {analysis.mixedScripts && (
            <span
              className="badge badge-warn"
              title="Latin letters mixed with Cyrillic or Greek letters in one word: look-alike letters are outlined"
            >
              ⚠ mixed scripts
            </span>
          )}
        </span>
      )}
      <Body className="ut-text" id={textId}>
        {analysis.segments.map((segment, index) => {
          if (segment.kind === 'text') return segment.text;
          if (segment.kind === 'hidden') {
            return (
              // biome-ignore lint/suspicious/noArrayIndexKey: segments are positional and re-derived from the text
              <span key={index} className="ut-hidden" title={segment.name}>
                {segment.token}
              </span>
            );
          }
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: segments are positional and re-derived from the text
            <span key={index} className="ut-confusable" title={segment.name}>
              {segment.text}
            </span>
          );
        })}
        {analysis.truncated && (
          <span className="ut-cut">
            {' '}
            … {(analysis.length - limit).toLocaleString()} more characters not shown
          </span>
        )}
      </Body>
      {long && (
        <span className="ut-more">
          <button
            type="button"
            className="link-button"
            aria-expanded={expanded}
            aria-controls={textId}
            onClick={() => setExpanded((value) => !value)}
          >
            {expanded
              ? `Show first ${limit.toLocaleString()} characters`
              : `Show all (${analysis.length.toLocaleString()} characters)`}
          </button>
          <span className="ut-length">{analysis.length.toLocaleString()} characters in total</span>
        </span>
      )}
    </Wrapper>
  );
}
